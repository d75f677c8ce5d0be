"""``python -m accessaudit`` runs the command line."""

from .cli import main

main()
