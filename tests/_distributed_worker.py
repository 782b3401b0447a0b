"""One rank of the distributed-loading tests; started by ``torchrun`` from tests/loader/test_distributed.py.

Not a test module (pytest collects only ``test_*.py``). Usage::

    torchrun --nproc_per_node=N _distributed_worker.py BETON CONFIGS_JSON RESULT_JSON

``CONFIGS_JSON`` holds a list of Loader configurations (see :func:`run_config`).
Each rank builds a ``Loader(distributed=True)`` per configuration, iterates it
for ``epochs`` epochs and notes which samples it got (the dataset's ``index``
field stores each sample's own number). Rank 0 gathers every rank's notes and
writes them to ``RESULT_JSON`` as ``{"world_size": N, "results": {name: [note
of rank 0, note of rank 1, ...]}}``.

Several configurations run in one launch because starting a rank (importing
torch and numba) costs seconds.
"""
import json
import os
import sys

import torch.distributed as dist

from ffcvx.fields.decoders import IntDecoder
from ffcvx.loader import Loader, OrderOption
from ffcvx.transforms import ToTensor


def run_config(beton, config):
    """Iterate one Loader configuration on this rank.

    Parameters
    ----------
    beton : str
        The ``.beton`` file; its field ``index`` holds each sample's number.
    config : dict
        ``order`` (an OrderOption name), ``seed``, ``batch_size``,
        ``num_workers``, ``drop_last``, ``indices`` (list or None),
        ``order_kwargs`` (dict or None) and ``epochs``.

    Returns
    -------
    dict
        ``rank`` and ``world_size`` as the Loader saw them, ``len`` (its
        ``len()``), ``epochs`` (per epoch, the sample numbers in the order
        yielded) and ``batch_sizes`` (per epoch, the size of each batch).
    """
    loader = Loader(beton, batch_size=config['batch_size'], num_workers=config['num_workers'],
                    order=OrderOption[config['order']], distributed=True, seed=config['seed'],
                    indices=config.get('indices'), drop_last=config['drop_last'],
                    order_kwargs=config.get('order_kwargs'),
                    pipelines={'index': [IntDecoder(), ToTensor()], 'blob': None})
    epochs, batch_sizes = [], []
    with loader:
        for _ in range(config['epochs']):
            seen, sizes = [], []
            for (index,) in loader:
                seen.extend(index[:, 0].tolist())
                sizes.append(int(index.shape[0]))
            epochs.append(seen)
            batch_sizes.append(sizes)
        return {'rank': loader.rank, 'world_size': loader.world_size, 'len': len(loader),
                'epochs': epochs, 'batch_sizes': batch_sizes}


def main(beton, configs_path, result_path):
    with open(configs_path) as f:
        configs = json.load(f)
    notes = {}
    # Configurations marked "before_init" run before the process group exists,
    # so the Loader must take its rank from torchrun's RANK / WORLD_SIZE.
    for config in configs:
        if config.get('before_init'):
            notes[config['name']] = run_config(beton, config)
    dist.init_process_group('gloo')
    try:
        for config in configs:
            if not config.get('before_init'):
                notes[config['name']] = run_config(beton, config)
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, {'rank': dist.get_rank(), 'notes': notes})
        if dist.get_rank() == 0:
            gathered.sort(key=lambda entry: entry['rank'])
            result = {'world_size': dist.get_world_size(),
                      'results': {config['name']: [entry['notes'][config['name']] for entry in gathered]
                                  for config in configs}}
            tmp = result_path + '.tmp'
            with open(tmp, 'w') as f:
                json.dump(result, f)
            os.replace(tmp, result_path)   # the test never sees a half-written file
        # Nobody leaves before rank 0 has written the result.
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    main(*sys.argv[1:4])
