from rel_eng.cli import main

raise SystemExit(main())
