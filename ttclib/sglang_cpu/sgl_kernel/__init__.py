"""Pure-torch stand-in for the ``sgl_kernel`` functions SGLang's CPU path calls.

SGLang ships its kernels only as CUDA wheels, which fail to import on a machine without
libcuda. On a CPU, ttc-energy puts this directory first on the *server's* PYTHONPATH (never on
a GPU machine, never in the client). Written for the SGLang version in
``ttclib.sglang_cpu.SGLANG_VERSION``; any other attribute raises when called, so a new code path
in a later SGLang fails loudly instead of computing something wrong.
"""
from __future__ import annotations

import torch

__version__ = "0.0.0+ttc-energy-cpu-standin"


def assign_req_to_token_pool_cpu(req_pool_indices: torch.Tensor, req_to_token: torch.Tensor,
                                 start_offset: torch.Tensor, end_offset: torch.Tensor,
                                 out_cache_loc: torch.Tensor, pool_len: int) -> None:
    """For each request row r with range [s, e), write its next e−s cache slots into req_to_token[r, s:e]."""
    pos = 0
    for row, s, e in zip(req_pool_indices.tolist(), start_offset.tolist(), end_offset.tolist()):
        n = e - s
        req_to_token[row, s:e] = out_cache_loc[pos:pos + n].to(req_to_token.dtype)
        pos += n


class _Missing:
    def __init__(self, name: str):
        self.__name__ = name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError(f"sgl_kernel.{self.__name__} has no CPU stand-in in ttc-energy "
                                  "(ttclib/sglang_cpu); this SGLang code path is not supported on CPU")

    def __getattr__(self, name: str):
        return _Missing(f"{self.__name__}.{name}")


def __getattr__(name: str):
    if name.startswith("__"):
        raise AttributeError(name)
    return _Missing(name)
