"""The tests of :func:`ttclib.sandbox.passes_call`, run by the tests' process (:mod:`.harness`)
like any trusted tests: ``TEST_DATA`` holds the ``[args, expected]`` cases and
``solution_call`` calls the solution's function in its own process. Tuples equal lists."""

TYPE_CHECKING = False
if TYPE_CHECKING:  # at run time both are among the globals the harness runs the tests with
    TEST_DATA: list[list] = []

    def solution_call(*args: object) -> object: ...


def norm(x):
    if isinstance(x, (list, tuple)):
        return [norm(v) for v in x]
    if isinstance(x, dict):
        return {k: norm(v) for k, v in x.items()}
    return x


if __name__ == "__main__":
    for i, (args, expected) in enumerate(TEST_DATA):
        got = solution_call(*args)
        if got != expected and norm(got) != norm(expected):
            raise AssertionError(f"case {i}: expected {expected!r}, got {got!r}")
