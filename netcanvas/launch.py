"""``netcanvas train --nproc N``: the same command on N processes of this machine, started by torchrun's launcher.

Each process then runs as under ``torchrun --standalone --nproc-per-node N -m netcanvas train ...``, which
is also how several machines train together (see README, "Scaling past one machine").
"""

from __future__ import annotations

import logging
import os

from graphcompiler import GraphError

from .stopping import EXIT_CODE


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``netcanvas ARGV`` on ``nproc`` local processes; returns the exit code the user sees."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # The processes share the cores; torchrun would otherwise say it chose one thread each.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # The launcher logs each failed process at length; the processes have said why already.
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)
    options = get_args_parser().parse_args(["--standalone", f"--nproc-per-node={nproc}", "--module", "netcanvas",
                                            *argv])
    try:
        run(options)
    except SignalException:
        return EXIT_CODE
    except ChildFailedError as exc:
        codes = {rank: failure.exitcode for rank, failure in exc.failures.items()}
        if set(codes.values()) == {EXIT_CODE}:
            return EXIT_CODE
        rank = min(codes)
        raise GraphError(f"training on {nproc} processes failed: rank {rank} exited with code {codes[rank]} "
                         "(its message is above)") from None
    return 0
