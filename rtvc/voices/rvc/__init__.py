"""RVC voices: WebUI ``.pth`` models with a HuBERT/ContentVec content encoder, pitch tracker and index.

Loading never executes code from a file (see ``safeload``). Networks are rtvc's own
PyTorch implementations with RVC's parameter names; nothing imports fairseq or the WebUI.
"""

from rtvc.voices.rvc.library import import_rvc, stored_rvc_voices, voice_from_record
from rtvc.voices.rvc.model import RvcModel
from rtvc.voices.rvc.voice import RVCStream, RVCVoice

__all__ = ["RVCStream", "RVCVoice", "RvcModel", "import_rvc", "stored_rvc_voices", "voice_from_record"]
