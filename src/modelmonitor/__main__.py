from modelmonitor.cli import main

raise SystemExit(main())
