"""``python -m accessaudit`` runs the command line."""

from accessaudit.cli import main

main()
