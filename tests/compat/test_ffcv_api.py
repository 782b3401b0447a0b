"""Drop-in: every public import path of FFCV 1.0 resolves under ``ffcvx``.

The table lists the module paths and names FFCV 1.0 user code imports (its
README, examples and the ffcv-imagenet / CIFAR-10 training scripts), with
``ffcv`` replaced by ``ffcvx``. The format layer must stay light: importing
the reader and the fields pulls in neither torch nor the pipeline.
"""
import importlib
import subprocess
import sys

import pytest

FFCV_PUBLIC = {
    'ffcvx.writer': ['DatasetWriter'],
    'ffcvx.reader': ['Reader'],
    'ffcvx.loader': ['Loader', 'OrderOption'],
    'ffcvx.loader.loader': ['Loader', 'OrderOption'],
    'ffcvx.fields': ['Field', 'BytesField', 'IntField', 'FloatField', 'RGBImageField', 'NDArrayField',
                     'JSONField', 'TorchTensorField'],
    'ffcvx.fields.decoders': ['IntDecoder', 'FloatDecoder', 'NDArrayDecoder', 'BytesDecoder',
                              'SimpleRGBImageDecoder', 'RandomResizedCropRGBImageDecoder',
                              'CenterCropRGBImageDecoder'],
    'ffcvx.fields.basics': ['IntField', 'FloatField', 'IntDecoder', 'FloatDecoder'],
    'ffcvx.fields.rgb_image': ['RGBImageField', 'SimpleRGBImageDecoder', 'ResizedCropRGBImageDecoder',
                               'RandomResizedCropRGBImageDecoder', 'CenterCropRGBImageDecoder'],
    'ffcvx.fields.ndarray': ['NDArrayField', 'TorchTensorField', 'NDArrayDecoder'],
    'ffcvx.fields.bytes': ['BytesField', 'BytesDecoder'],
    'ffcvx.fields.json': ['JSONField'],
    'ffcvx.fields.base': ['Field'],
    'ffcvx.pipeline': ['PipelineSpec', 'Compiler', 'Operation', 'State', 'AllocationQuery'],
    'ffcvx.pipeline.operation': ['Operation'],
    'ffcvx.pipeline.state': ['State'],
    'ffcvx.pipeline.allocation_query': ['AllocationQuery'],
    'ffcvx.pipeline.compiler': ['Compiler'],
    'ffcvx.transforms': ['ToTensor', 'ToDevice', 'ToTorchImage', 'NormalizeImage', 'Convert', 'Squeeze',
                         'View', 'RandomResizedCrop', 'RandomHorizontalFlip', 'RandomTranslate', 'Cutout',
                         'ImageMixup', 'LabelMixup', 'MixupToOneHot', 'Poison', 'ReplaceLabel',
                         'ModuleWrapper', 'RandomBrightness', 'RandomContrast', 'RandomSaturation'],
    'ffcvx.transforms.common': ['Squeeze'],
    'ffcvx.transforms.ops': ['ToTensor', 'ToDevice', 'ToTorchImage', 'Convert', 'View'],
    'ffcvx.transforms.flip': ['RandomHorizontalFlip'],
    'ffcvx.transforms.normalize': ['NormalizeImage'],
    'ffcvx.transforms.module': ['ModuleWrapper'],
    'ffcvx.memory_managers': ['OSCacheManager', 'ProcessCacheManager'],
    'ffcvx.traversal_order': ['Random', 'Sequential', 'QuasiRandom'],
}


@pytest.mark.parametrize('module', sorted(FFCV_PUBLIC))
def test_ffcv_import_paths(module):
    loaded = importlib.import_module(module)
    missing = [name for name in FFCV_PUBLIC[module] if not hasattr(loaded, name)]
    assert not missing, f"{module} lacks {missing}"


def test_decoder_aliases_are_the_decoders():
    from ffcvx.fields import decoders
    from ffcvx.fields.basics import FloatDecoder, IntDecoder
    from ffcvx.fields.bytes import BytesDecoder
    from ffcvx.fields.ndarray import NDArrayDecoder
    assert (IntDecoder, FloatDecoder, BytesDecoder, NDArrayDecoder) == (
        decoders.IntDecoder, decoders.FloatDecoder, decoders.BytesDecoder, decoders.NDArrayDecoder)
    import ffcvx.fields.basics as basics
    with pytest.raises(AttributeError, match="has no attribute 'RGBDecoder'"):
        basics.RGBDecoder


def test_format_layer_imports_neither_torch_nor_the_pipeline():
    code = ("import sys, ffcvx.reader, ffcvx.writer, ffcvx.fields.basics, ffcvx.fields.ndarray, "
            "ffcvx.fields.bytes; "
            "print(sorted(m for m in ('torch', 'ffcvx.pipeline', 'ffcvx.loader') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == '[]'
