"""Scratch: CPU cost of one engine process's work for N sessions (no sockets)."""
import sys, time, cProfile, pstats, tempfile
from pathlib import Path
import numpy as np, soundfile as sf
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from rtvc.config import load_config
from rtvc.audio.resample import resample
from rtvc.engine import Engine, EngineSettings
from rtvc.session.build import build_stream, default_registry
from rtvc.session.limits import Limits
from rtvc.session.request import StartRequest

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
VOICE = sys.argv[2] if len(sys.argv) > 2 else "feminine"
WM = (sys.argv[3] != "0") if len(sys.argv) > 3 else True
BLOCK = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] != "-p" else None
data_dir = Path(tempfile.mkdtemp())
config = load_config(overrides={"server": {"data_dir": str(data_dir)}})
reg = default_registry(config, data_dir)
x, sr = sf.read("../shared/speech/librispeech_dev-clean/174-50561-0000.wav", dtype="float32")
x = resample(x, sr, 48000).astype(np.float32)[: 48000 * 6]
fmt = {"encoding": "pcm_s16le", "sample_rate": 48000, "channels": 1}
engine = Engine(EngineSettings(mode="thread", workers=1))
streams = []
for i in range(N):
    req = StartRequest.from_json({"type": "session.start", "voice": VOICE, "purpose": "research", "input": fmt, "output": fmt, "params": {}, **({"block_ms": float(BLOCK)} if BLOCK else {})})
    s, info = build_stream(reg.get(VOICE), req, config=config, limits=Limits(), data_dir=data_dir, watermark_token=(1234 + i) if WM else None)
    streams.append(s); engine.add(s, key=i)
def run():
    t0 = time.perf_counter() - 100
    for off in range(0, len(x), 960):
        for s in streams:
            s.push(x[off:off + 960], t0)
        while True:
            rep, retry = engine.step()
            if rep is None: break
c = time.process_time(); run(); c = time.process_time() - c
print(f"N={N} voice={VOICE} wm={WM}: {c / (len(x)/48000) / N * 100:.2f} % of a core per session")
if "-p" in sys.argv:
    for s in streams: pass
    cProfile.run("run()", "/tmp/w.prof"); pstats.Stats("/tmp/w.prof").sort_stats("tottime").print_stats(25)
