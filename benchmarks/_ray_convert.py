"""A local Ray cluster that converts the benchmark folder on request, for
benchmarks/test_ray_write_speed.py (one process per cluster size).

Usage: python _ray_convert.py SAMPLES_JSON OUT CPUS MAX_RESOLUTION BLOCKS PAGE_SIZE

Starts a local Ray cluster of ``CPUS`` CPUs and warms its workers up (a
BetonDatasink write of the first 4 * CPUS images, so that every worker has
started and imported ffcvx and its JPEG backend), then prints one JSON line
with the seconds both took (left out of the rate). Then, for each line
``convert`` read from stdin, converts the whole folder with ``BetonDatasink``
(images read by path, JPEG at ``MAX_RESOLUTION``) from a Dataset of
``BLOCKS`` blocks and prints one JSON line: the seconds of ``write_datasink``
from the call to its return (the write tasks and the merge on the driver
included), the CPU seconds the driver and Ray's own processes (GCS, raylet,
...; not the workers) used meanwhile, the parts and the file's size. The parent alternates the
cluster sizes, so that both see the same load on a shared machine.
"""
import json
import os
import sys
import time


def _overhead_cpu():
    """CPU seconds so far of this driver and of Ray's processes that are not workers."""
    import psutil
    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    for child in me.children(recursive=True):
        try:
            if not child.cmdline()[0].startswith('ray::'):    # workers' process titles
                total += sum(child.cpu_times()[:2])
        except (psutil.Error, IndexError):
            pass
    return total


def main(samples_json, out, cpus, max_resolution, blocks, page_size):
    import ray
    from ray.data import DataContext

    from ffcvx.fields import IntField, RGBImageField
    from ffcvx.ray_datasink import BetonDatasink

    with open(samples_json) as handle:
        rows = [{'path': path, 'label': label} for path, label in json.load(handle)]
    fields = {'image': RGBImageField(write_mode='jpg', max_resolution=max_resolution,
                                     jpeg_quality=90), 'label': IntField()}
    context = DataContext.get_current()
    context.execution_options.preserve_order = True
    context.enable_progress_bars = False
    # Ray Data's per-operator resource reservation starts the write tasks of a 2-CPU
    # cluster one at a time until the first finishes, and each later one ~0.2 s after a
    # slot frees (measured with sleeping tasks: 8 tasks of 1 s took 5.6 s, 4.25 s without)
    context.op_resource_reservation_enabled = False
    start = time.perf_counter()
    # 'local': a cluster of its own, never the other process's (both run at once)
    ray.init(address='local', num_cpus=cpus, include_dashboard=False,
             object_store_memory=200 << 20, log_to_driver=False)
    started = time.perf_counter() - start

    def convert(rows, blocks):
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        sink = BetonDatasink(out, fields, columns={'image': 'path'}, page_size=page_size)
        begin, cpu = time.perf_counter(), _overhead_cpu()
        ds.write_datasink(sink)
        return time.perf_counter() - begin, _overhead_cpu() - cpu, sink

    warm_up, _, _ = convert(rows[:4 * cpus], 2 * cpus)
    print(json.dumps({'cpus': cpus, 'start_s': started, 'warm_up_s': warm_up}), flush=True)
    for line in sys.stdin:
        if line.strip() != 'convert':
            break
        seconds, overhead, sink = convert(rows, blocks)
        print(json.dumps({'seconds': seconds, 'overhead_cpu_s': overhead, 'images': len(rows),
                          'parts': len(sink.parts),
                          'bytes': os.path.getsize(out)}), flush=True)
    ray.shutdown()


if __name__ == '__main__':
    args = sys.argv[1:]
    main(args[0], args[1], *(int(a) for a in args[2:6]))
