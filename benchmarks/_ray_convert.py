"""One Ray conversion for benchmarks/test_ray_write_speed.py, in a process of its own.

Usage: python _ray_convert.py SAMPLES_JSON OUT CPUS MAX_RESOLUTION BLOCKS ROUNDS PAGE_SIZE

Starts a local Ray cluster of ``CPUS`` CPUs, warms its workers up (a
BetonDatasink write of the first 2 * CPUS images, so that every worker has
started and imported ffcvx and its JPEG backend), then converts the whole
folder ``ROUNDS`` times with ``BetonDatasink`` (images read by path, JPEG at
``MAX_RESOLUTION``) from a Dataset of ``BLOCKS`` blocks. Prints one JSON line:
the seconds of the start and of the warm-up (left out of the rate), and of
each conversion: ``write_datasink`` from the call to its return, the write
tasks and the merge on the driver included.
"""
import json
import os
import sys
import time


def main(samples_json, out, cpus, max_resolution, blocks, rounds, page_size):
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
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, object_store_memory=200 << 20,
             log_to_driver=False)
    started = time.perf_counter() - start

    def convert(rows, blocks):
        ds = ray.data.from_items(rows, override_num_blocks=blocks)
        sink = BetonDatasink(out, fields, columns={'image': 'path'}, page_size=page_size)
        begin = time.perf_counter()
        ds.write_datasink(sink)
        return time.perf_counter() - begin, sink

    warm_up, _ = convert(rows[:2 * cpus], 2 * cpus)
    times, parts = [], 0
    for _ in range(rounds):
        seconds, sink = convert(rows, blocks)
        times.append(seconds)
        parts = len(sink.parts)
    ray.shutdown()
    print(json.dumps({'cpus': cpus, 'start_s': started, 'warm_up_s': warm_up, 'times_s': times,
                      'images': len(rows), 'parts': parts, 'bytes': os.path.getsize(out)}))


if __name__ == '__main__':
    args = sys.argv[1:]
    main(args[0], args[1], *(int(a) for a in args[2:7]))
