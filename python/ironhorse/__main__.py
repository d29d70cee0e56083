"""``python -m ironhorse APP ...``: the same as the ``ironhorse`` console script."""

from ironhorse import main

main()
