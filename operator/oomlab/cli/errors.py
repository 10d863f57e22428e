"""The CLI's one error rule: any failure is one line on stderr and exit code 2, never a
traceback; Ctrl-C is exit 130. :class:`App` applies it to every command it registers."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, NoReturn, ParamSpec

import click
import typer
from rich.console import Console
from rich.text import Text

P = ParamSpec("P")

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
DEBUG_ENV = "OOMLAB_DEBUG"
"""Set to 1 to let an unexpected exception through with its traceback."""

err = Console(stderr=True)


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print ``message`` as the command's one error line and exit (2 unless told)."""
    err.print(Text.assemble(("error: ", "bold red"), " ".join(message.split())), soft_wrap=True)
    raise typer.Exit(code)


def describe(exc: Exception) -> str | None:
    """The one line for an error the CLI expects; None for one it does not (a bug)."""
    from docker.errors import DockerException
    from kubernetes.client.exceptions import ApiException
    from kubernetes.config import ConfigException
    from requests import RequestException
    from urllib3.exceptions import HTTPError

    from oomlab.cli.memqos_compare import MemQoSError
    from oomlab.cli.thp_compare import ThpError
    from oomlab.experiment import InvalidSpec
    from oomlab.rules.semantics import FlagError
    from oomlab.rules.units import SizeError
    from oomlab.runners import EngineError

    if isinstance(exc, InvalidSpec):
        return f"{exc.field}: {exc}"
    if isinstance(exc, SizeError | FlagError | EngineError | ThpError | MemQoSError):
        return str(exc)
    if isinstance(exc, ConfigException):
        where = os.environ.get("KUBECONFIG") or "~/.kube/config"
        return f"no cluster configuration (KUBECONFIG={where}): {exc}"
    if isinstance(exc, ApiException):
        from oomlab.kube import error_message

        if exc.status == 409:
            return f"conflict: the API server said 409: {error_message(exc)}"
        return f"the API server said {exc.status}: {error_message(exc)}"
    if isinstance(exc, HTTPError):
        return f"no cluster answers ({exc.__class__.__name__}: {exc})"
    if isinstance(exc, DockerException | RequestException):
        return f"the Docker engine failed ({exc.__class__.__name__}: {exc})"
    from oomlab.kube import NotFound, StatusConflict

    if isinstance(exc, NotFound | StatusConflict | OSError):
        return str(exc)
    return None


def one_line_errors(command: Callable[P, None]) -> Callable[P, None]:
    """Run ``command`` under the CLI's error rule."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            command(*args, **kwargs)
        except KeyboardInterrupt:
            err.print("interrupted", highlight=False)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        # typer >= 0.2x vendors click: its usage errors are TyperException, not click's own.
        except (
            typer.Exit,
            typer.Abort,
            typer.TyperException,
            click.exceptions.Exit,
            click.ClickException,
        ):
            raise
        except Exception as exc:
            line = describe(exc)
            if line is None:
                if os.environ.get(DEBUG_ENV) == "1":
                    raise
                line = f"unexpected {exc.__class__.__name__}: {exc} ({DEBUG_ENV}=1 shows where)"
            fail(line)

    return wrapper


def guarded(action: Callable[[], None]) -> None:
    """Run a command body written as a closure under the CLI's error rule."""
    one_line_errors(action)()


class App(typer.Typer):
    """A typer app whose every command runs under :func:`one_line_errors`."""

    def command(self, *args: Any, **kwargs: Any) -> Callable[[Any], Any]:
        register = super().command(*args, **kwargs)

        def decorator(function: Callable[..., None]) -> Callable[..., None]:
            register(one_line_errors(function))
            return function

        return decorator
