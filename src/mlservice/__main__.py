from mlservice.cli import main

# Guarded: worker processes started with "spawn" import this module as __mp_main__.
if __name__ == "__main__":
    raise SystemExit(main())
