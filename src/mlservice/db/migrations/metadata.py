"""Every table of every domain, imported in one place so Alembic sees the whole schema.

It lives with the migrations, not in ``db``: knowing every domain's tables, it sits above all
of them, while the rest of ``db`` (engine, sessions, paging) is below every domain."""

from mlservice.alerts import models as alert_models  # noqa: F401
from mlservice.auth import models as auth_models  # noqa: F401
from mlservice.datasets import models as dataset_models  # noqa: F401
from mlservice.db.base import Base
from mlservice.drift import models as drift_models  # noqa: F401
from mlservice.events import models as event_models  # noqa: F401
from mlservice.jobs import models as job_models  # noqa: F401
from mlservice.predictions import models as prediction_models  # noqa: F401
from mlservice.registry import models as registry_models  # noqa: F401

metadata = Base.metadata
