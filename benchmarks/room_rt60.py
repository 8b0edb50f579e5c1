"""How close the simulated rooms of ``asr/impulse_response`` come to the RT60 they are drawn for.

For each requested RT60 it simulates ``--rooms`` shoebox rooms with the augmentation's defaults
(sizes 3 x 3 x 2.5 to 10 x 8 x 4 m, source and microphone 0.5 m from the walls and 1 m apart) and
measures each response's RT60 by Schroeder backward integration (T20 x 3,
:func:`convai_asr.augment.reverb.schroeder_rt60`), for three ways of choosing the wall
absorption in the same rooms:

- ``sabine``: pyroomacoustics' ``inverse_sabine`` (absorption and image-source order);
- ``eyring``: Eyring's formula, no correction;
- ``calibrated``: what the augmentation does (Eyring, then corrected once from the measured RT60).

It prints the ratio measured / requested (minimum, median, maximum) per way and RT60, the seconds
each calibrated room took, and the command.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rt60", type=float, nargs="+", default=[0.2, 0.4, 0.6, 0.8, 1.0])
    parser.add_argument("--rooms", type=int, default=10, help="rooms per RT60")
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import pyroomacoustics as pra
    import torch

    from convai_asr.augment.reverb import (
        SPEED_OF_SOUND,
        ImpulseResponse,
        eyring_absorption,
        schroeder_rt60,
        simulate_room,
    )

    torch.set_num_threads(1)
    rate = args.sample_rate
    pooled: dict[str, list[float]] = {"sabine": [], "eyring": [], "calibrated": []}
    print(f"{'RT60':>5}  {'sabine':>17}  {'eyring':>17}  {'calibrated':>17}  s/room")
    for index, rt60 in enumerate(args.rt60):
        augmentation = ImpulseResponse(
            rate, min_rt60=rt60, max_rt60=rt60, bank_size=args.rooms, seed=args.seed + index
        )
        start = time.perf_counter()
        bank = augmentation.bank()
        seconds = (time.perf_counter() - start) / len(bank)
        ratios: dict[str, list[float]] = {name: [] for name in pooled}
        for response in bank:
            placement = {
                "sample_rate": rate,
                "room": response.room,
                "source": response.source,
                "microphone": response.microphone,
            }
            try:
                absorption, order = pra.inverse_sabine(rt60, list(response.room))
                sabine = simulate_room(**placement, absorption=absorption, max_order=order)
                ratios["sabine"].append(schroeder_rt60(sabine, sample_rate=rate) / rt60)
            except ValueError:  # Sabine's absorption above 1: this RT60 is too short for the room
                ratios["sabine"].append(math.nan)
            eyring = simulate_room(
                **placement,
                absorption=eyring_absorption(rt60, response.room),
                max_order=math.ceil(SPEED_OF_SOUND * rt60 / min(response.room)),
            )
            ratios["eyring"].append(schroeder_rt60(eyring, sample_rate=rate) / rt60)
            ratios["calibrated"].append(schroeder_rt60(response.samples, sample_rate=rate) / rt60)
        cells = []
        for name, values in ratios.items():
            finite = [v for v in values if not math.isnan(v)]
            pooled[name].extend(finite)
            failed = len(values) - len(finite)
            cells.append(
                f"{min(finite):.2f} {statistics.median(finite):.2f} {max(finite):.2f}"
                + (f" ({failed} n/a)" if failed else "")
            )
        print(f"{rt60:5.2f}  " + "  ".join(f"{c:>17}" for c in cells) + f"  {seconds:6.2f}")
    print(
        "all    "
        + "  ".join(
            f"{min(v):.2f} {statistics.median(v):.2f} {max(v):.2f}".rjust(17)
            for v in pooled.values()
        )
        + f"   ({len(pooled['calibrated'])} rooms; min median max of measured / requested)"
    )
    print("command: python " + " ".join(["benchmarks/room_rt60.py", *(argv or sys.argv[1:])]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
