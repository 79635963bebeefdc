"""CPU support for serving with SGLang (tests and the embedded default on machines without a GPU)."""
from pathlib import Path

SGLANG_VERSION = "0.5.23"          # the SGLang release the stand-in kernels were written for
STANDIN_PATH = Path(__file__).parent  # put first on the server's PYTHONPATH on CPU only
