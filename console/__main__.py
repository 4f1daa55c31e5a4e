import sys

from console.launch import main

sys.exit(main())
