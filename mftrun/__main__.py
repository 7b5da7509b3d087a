from mftrun.cli import main

raise SystemExit(main())
