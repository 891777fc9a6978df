"""``python -m weaviate_ext``: the same as the ``weaviate-ext`` command."""

from weaviate_ext.cli import main

if __name__ == "__main__":
    main()
