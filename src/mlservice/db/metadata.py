"""Every table of every domain, imported in one place so Alembic sees the whole schema."""

from mlservice.alerts import models as alert_models  # noqa: F401
from mlservice.auth import models as auth_models  # noqa: F401
from mlservice.datasets import models as dataset_models  # noqa: F401
from mlservice.drift import models as drift_models  # noqa: F401
from mlservice.events import models as event_models  # noqa: F401
from mlservice.jobs import models as job_models  # noqa: F401
from mlservice.registry import models as registry_models  # noqa: F401
from mlservice.db.base import Base

metadata = Base.metadata
