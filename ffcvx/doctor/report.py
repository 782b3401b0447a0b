"""The doctor's text report and its one-line verdict (JSON is :meth:`Diagnosis.to_dict`)."""
__all__ = ['brief', 'human', 'text']


def human(nbytes):
    """``nbytes`` in B, KiB, MiB or GiB with one decimal."""
    value = float(nbytes)
    for unit in ('B', 'KiB', 'MiB'):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == 'B' else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def brief(diagnosis):
    """One line: the bound, the advice and the predicted gain."""
    verdict = diagnosis.verdict
    line = (f"{verdict['bound']}-bound at {verdict['predicted_now']:.0f} img/s: "
            f"{verdict['advice']}")
    after = verdict.get('predicted_after')
    if after is not None and verdict['bound'] != 'storage':
        line += f" (predicted {after:.0f} img/s, x{after / max(verdict['predicted_now'], 1e-9):.1f})"
    return line


def text(diagnosis):
    """The short report ``ffcvx doctor`` prints, as a string."""
    d = diagnosis
    lines = [f"{d.file}: {d.samples} samples per timed epoch, {d.cores} cores, "
             f"{d.other_load:.1f} other threads running, "
             f"{d.workers} workers ({d.seconds:.1f} s of measurement)"]
    storage = d.storage
    where = (f"{d.resident:.0%} in the page cache" if d.resident is not None
             else d.resident_note)
    lines.append(f"storage   {human(storage['bytes_per_s'])}/s, {human(storage['bytes_per_sample'])}"
                 f" per sample -> {storage['img_per_s']:.0f} img/s ({where})")
    lines.append("CPU time per sample (compiled pipelines cut after each step):")
    total = sum(d.stages.values())
    for name, seconds in d.stages.items():
        label = 'loader (order, labels, batching)' if name == 'loader' else name
        lines.append(f"  {label:<34} {seconds * 1e3:8.3f} ms  {seconds / max(total, 1e-12):4.0%}")
    lines.append(f"  {'total':<34} {total * 1e3:8.3f} ms")
    if d.host_to_device is not None:
        lines.append(f"  host-to-device copy {d.host_to_device * 1e3:.3f} ms per sample")
    lines.append("img/s by workers, after a warm-up epoch (model):  " + "  ".join(
        f"{w}: {rate:.0f} ({d.predicted.get(w, float('nan')):.0f})"
        for w, rate in d.measured.items()))
    if d.with_step is not None:
        lines.append(f"with a {d.step_ms:g} ms training step per batch: {d.with_step:.0f} img/s")
    lines.append("verdict: " + brief(d))
    return "\n".join(lines)
