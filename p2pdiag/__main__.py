# Signals first: from here on Ctrl-C and SIGTERM are noted, never a KeyboardInterrupt mid-import.
from p2pdiag import interrupts

interrupts.install()

from p2pdiag.cli import main

if __name__ == "__main__":
    main()
