"""Speech Data Explorer: a browser view of a manifest, its statistics and a model's errors.

``convai explore MANIFEST [--predictions HYP.jsonl]`` serves a Dash app (the ``explorer`` extra
of convai-asr: ``pip install 'convai-asr[explorer]'``). The modules split the work:

- :mod:`.dataset`: the manifest's rows and statistics, computed once and cached;
- :mod:`.predictions`: hypotheses matched to utterances, error rates and word diffs;
- :mod:`.table`: server-side filtering, sorting and paging of the utterance table;
- :mod:`.audio`: one utterance's samples, waveform envelope, spectrogram and WAV bytes;
- :mod:`.figures` and :mod:`.layout`: the plotly figures and the page;
- :mod:`.app`: the Dash app, its callbacks and the audio route;
- :mod:`.cli`: the ``convai explore`` command.

Only :mod:`.figures`, :mod:`.layout` and :mod:`.app` import Dash; nothing here imports torch.
"""

from __future__ import annotations
