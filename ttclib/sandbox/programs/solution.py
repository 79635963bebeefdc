"""S, the solution's process: ``python -I -S -c <codec + this> <request fd> <reply fd>``.

A fresh interpreter that the tests' process (T, :mod:`.harness`) starts before it reads any
test. It receives the solution, runs it as module ``__main__`` (LeetCode solutions:
``solution``), then answers calls ``{"call": name, "args", "kwargs"}`` with
``{"value": v}``, ``{"raised": [type name, message]}`` or ``{"unsupported": why}``.
Its text follows the codec's (:mod:`.codec`), whose functions it uses.
"""

import builtins
import os
import sys
import types

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time the codec's text comes first, in the same module
    from .codec import decode, encode, receive, send


def target(namespace, name):
    if name.startswith("Solution."):
        method, cls = name[len("Solution.") :], namespace.get("Solution")
        if isinstance(cls, type) and hasattr(cls, method):
            return getattr(cls(), method)
        if callable(namespace.get(method)):
            return namespace[method]
        raise NameError(f"no Solution.{method} and no function {method}")
    if name in namespace:
        return namespace[name]
    if hasattr(builtins, name):
        return getattr(builtins, name)
    raise NameError(f"the solution does not define {name}")


def serve():
    first = receive(REQUEST)
    sys.path[:] = first["path"]
    import _sitebuiltins  # what site would have added: exit() and quit()

    builtins.exit = _sitebuiltins.Quitter("exit", "Ctrl-D (i.e. EOF)")
    builtins.quit = _sitebuiltins.Quitter("quit", "Ctrl-D (i.e. EOF)")
    module = types.ModuleType(first["module"])
    sys.modules[first["module"]] = module
    sys.argv = ["main.py"]
    try:
        exec(compile(first["solution"], "solution.py", "exec"), module.__dict__)
    except Exception as exc:
        import traceback

        traceback.print_exc()
        send(REPLY, {"error": f"the solution raised {type(exc).__name__}"})
        return
    send(REPLY, {"ready": True})
    while True:
        message = receive(REQUEST)
        if message is None:
            return
        try:
            value = target(module.__dict__, message["call"])(*decode(message["args"]), **decode(message["kwargs"]))
        except Exception as exc:
            try:
                reply = {"raised": [type(exc).__name__, str(exc)[:2000]]}
            except Exception:
                reply = {"raised": [type(exc).__name__, ""]}
        else:
            try:
                reply = {"value": encode(value)}
            except (TypeError, ValueError, RecursionError) as exc:
                reply = {"unsupported": f"{message['call']}: {exc!s}"}
        send(REPLY, reply)


if __name__ == "__main__":
    REQUEST, REPLY = int(sys.argv[1]), int(sys.argv[2])
    serve()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)
