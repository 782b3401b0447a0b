"""One rank of tests/loader/test_resume.py's torchrun checks (not a test module).

Usage: torchrun --nproc_per_node=N _resume_worker.py BETON MODE STATE RESULT

MODE ``save``: epoch 0, then 2 batches of epoch 1, then rank 0 writes
``loader.state_dict()`` to STATE. MODE ``resume``: loads STATE and runs the rest
of epoch 1. Rank 0 writes every rank's ``[(sample, digest of its augmented
image)]`` to RESULT as JSON. The per-rank batch size keeps the global batch 12.
"""
import json
import os
import pickle
import sys

import torch.distributed as dist

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]   # test_resume, then tests/ (its helpers)

from test_resume import GLOBAL_BATCH, _rank_samples  # noqa: E402


def main(beton, mode, state_path, result_path):
    dist.init_process_group('gloo')
    try:
        samples, state = _rank_samples(beton, mode, state_path)
        if mode == 'save' and dist.get_rank() == 0:
            with open(state_path + '.tmp', 'wb') as f:
                pickle.dump(state, f)
            os.replace(state_path + '.tmp', state_path)
        gathered = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, samples)
        if dist.get_rank() == 0:
            with open(result_path + '.tmp', 'w') as f:
                json.dump({'world_size': dist.get_world_size(), 'global_batch': GLOBAL_BATCH,
                           'ranks': gathered}, f)
            os.replace(result_path + '.tmp', result_path)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == '__main__':
    main(*sys.argv[1:5])
