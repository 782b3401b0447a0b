"""The doctor's verdict on hand-made figures: every bound, every piece of advice, the predicted gains."""
import pytest

from ffcvx.doctor.verdict import Figures, cores_used, decide, predicted_rate

MS = 1e-3
#: 1 ms of decoding and 0.1 ms of flipping per sample per core, on 8 cores with 8 workers.
DECODE = dict(stages={'loader': 0.01 * MS, 'RandomResizedCropRGBImageDecoder': 1 * MS,
                      'RandomHorizontalFlip': 0.1 * MS},
              storage_rate=1e6, cores=8, workers=8, batch_size=64)


def figures(**changes):
    return Figures(**dict(DECODE, **changes))


def test_model_is_the_smaller_of_storage_and_the_cores():
    f = figures()
    assert predicted_rate(f, 1) == pytest.approx(1 / 1.11e-3)
    assert predicted_rate(f, 4) == pytest.approx(4 / 1.11e-3)
    assert predicted_rate(f, 16) == pytest.approx(8 / 1.11e-3)       # no more than the cores
    assert predicted_rate(figures(storage_rate=500.0), 8) == 500.0


def test_cores_used_are_the_cores_other_threads_leave_free():
    assert cores_used(2, 2) == 2
    assert cores_used(4, 2) == 2
    assert cores_used(2, 2, other_load=1) == 1            # a busy core: the batch waits for it
    assert cores_used(1, 2, other_load=1) == 1
    assert cores_used(2, 2, other_load=3) == pytest.approx(0.5)   # one thread's fair share
    assert cores_used(2, 8, other_load=2.5) == 2


def test_decode_bound_with_idle_cores_advises_more_workers():
    verdict = decide(figures(workers=2))
    assert verdict.bound == 'decode'
    assert 'num_workers=8' in verdict.advice
    assert verdict.predicted_after == pytest.approx(4 * verdict.predicted_now)


def test_decode_bound_on_large_images_advises_max_resolution():
    verdict = decide(figures(mean_pixels=2048 * 1536))
    assert verdict.bound == 'decode' and 'max_resolution=512' in verdict.advice
    # decoding shrinks with the pixels: 1 ms * 512^2 / (2048 * 1536)
    decode = 1 * MS * 512 ** 2 / (2048 * 1536)
    assert verdict.predicted_after == pytest.approx(8 / (0.11 * MS + decode))


def test_decode_bound_on_small_images_names_a_gpu_backend_when_one_is_installed():
    assert "backend='nvjpeg'" in decide(figures(mean_pixels=400 * 300,
                                                gpu_backends=['nvjpeg'])).advice
    verdict = decide(figures(mean_pixels=400 * 300))
    assert verdict.bound == 'decode' and verdict.predicted_after is None
    assert 'GPU decoder backend' in verdict.advice


def test_augmentation_bound_names_the_step_and_the_gain_without_it():
    stages = dict(DECODE['stages'], NormalizeImage=3 * MS)
    verdict = decide(figures(stages=stages))
    assert verdict.bound == 'augmentation' and verdict.advice.startswith('NormalizeImage')
    assert verdict.predicted_after == pytest.approx(8 / 1.11e-3)


def test_storage_bound_remote_random_advises_quasi_random():
    verdict = decide(figures(storage_rate=300.0, is_url=True, cache='remote'))
    assert verdict.bound == 'storage' and 'QUASI_RANDOM' in verdict.advice
    assert verdict.predicted_now == 300.0
    assert verdict.predicted_after == pytest.approx(8 / 1.11e-3)


def test_storage_bound_cold_local_file_advises_the_process_cache():
    verdict = decide(figures(storage_rate=300.0, resident=0.1))
    assert verdict.bound == 'storage' and "cache='process'" in verdict.advice


def test_storage_bound_warm_local_file_advises_smaller_samples():
    verdict = decide(figures(storage_rate=300.0, resident=1.0))
    assert verdict.bound == 'storage' and 'max_resolution' in verdict.advice


def test_consumer_bound_when_the_training_step_is_slower():
    verdict = decide(figures(step_ms=100.0))      # 64 samples per 0.1 s: 640 img/s
    assert verdict.bound == 'consumer' and verdict.predicted_now == pytest.approx(640)
    assert decide(figures(step_ms=1.0)).bound == 'decode'   # 64 000 img/s: the loader is slower
