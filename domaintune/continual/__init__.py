"""Continual learning: rounds of new data on top of the merged specialist (``rounds``), and its CLI
(``python -m domaintune.continual``). It sits above ``training`` and ``evaluation``: a round trains,
then scores every earlier round's held-out rows."""
