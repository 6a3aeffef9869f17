"""``python -m strikechain`` runs the command-line interface."""

from strikechain.cli.main import main

main()
