from mlservice.cli import main

raise SystemExit(main())
