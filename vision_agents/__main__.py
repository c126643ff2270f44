import sys

from vision_agents.cli import main

sys.exit(main())
