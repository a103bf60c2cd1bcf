"""Container entrypoint: run the action from the runner's `INPUT_*` variables, or, given the argument
`relay`, the webhook relay (`docker run IMAGE relay`; the action itself passes no arguments)."""

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"]:
        from restart.relay import main as relay

        sys.exit(relay(sys.argv[2:]))
    from restart.cli import main_action

    sys.exit(main_action())
