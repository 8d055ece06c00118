"""Data-parallel training across processes and machines: MPI (``mpi4py``) on the CPU, NCCL on GPUs.

    mpiexec -n 2 python -m minicnn.train lenet5 --distributed      # the training command line

    from minicnn import distributed
    group = distributed.init_process_group()                       # rank, world size from MPI
    model = distributed.DistributedDataParallel(model)             # rank 0's weights everywhere
    sampler = distributed.DistributedSampler(train_set, seed=0)    # this rank's shard, per epoch
    loader = DataLoader(train_set, batch_size=64 // group.world_size, sampler=sampler)
    training.fit(model, loader, optimizer, epochs=2)               # sums the metrics over the ranks
    # or PyTorch's loop: loss = F.cross_entropy(model(x), y); loss.backward()  (averages); optimizer.step()

* ``group.py``: :func:`init_process_group`, :class:`ProcessGroup` (bounded-time collectives over
  MPI, ``abort``), the default group; ``nccl.py``: the NCCL communicator for CuPy arrays;
* ``ddp.py``: :class:`DistributedDataParallel` (``no_sync``, ``average_gradients``);
* ``reducer.py``: the gradient buckets and the :class:`Reducer` that all-reduces them inside
  ``backward()``, each bucket as soon as its gradients are final; :class:`UnaveragedGradientsError`;
* ``sampler.py``: :class:`DistributedSampler` (:class:`minicnn.data.DistributedSampler` with the
  rank and world size of the default group).

mpi4py is optional (``pip install -e '.[mpi]'``): this package imports without it, and
``init_process_group`` says what to install.
"""
from .ddp import DistributedDataParallel
from .group import (DEFAULT_TIMEOUT, MPI_HINT, DistributedError, ProcessGroup, RankFailed, default_group,
                    destroy_process_group, environment_error, get_rank, get_world_size, import_mpi, init_process_group, is_initialized,
                    launcher_rank, launcher_world_size)
from .reducer import Bucket, Reducer, UnaveragedGradientsError, make_buckets
from .sampler import DistributedSampler

__all__ = ["init_process_group", "destroy_process_group", "is_initialized", "default_group", "get_rank",
           "get_world_size", "ProcessGroup", "DistributedError", "RankFailed", "DistributedDataParallel",
           "DistributedSampler", "Bucket", "make_buckets", "Reducer", "UnaveragedGradientsError", "launcher_rank", "launcher_world_size", "import_mpi",
           "MPI_HINT", "DEFAULT_TIMEOUT", "environment_error"]
