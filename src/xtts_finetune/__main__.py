import sys

from xtts_finetune.cli import main

sys.exit(main())
