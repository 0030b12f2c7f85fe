"""`python -m mobile [--data-dir DIR] [--server URL] [--demo-orders N]`."""

from mobile.cli import main

main()
