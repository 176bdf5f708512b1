"""Tensor keys shared by the pipeline, the models and the exported signature (no TensorFlow import here).

Model inputs are the keys of the features dict that the pipeline yields and the functional model takes;
model outputs the keys of its output dict; the serving keys those of the SavedModel's signatures.
"""

# Model inputs.
FRAMES = "frames"  # uint8 [batch, num_frames, frame_size, frame_size, 3]: squares of the short side
WAVEFORM = "waveform"  # float32 [batch, audio_samples]: the audio window that plays with the frames
MEL = "mel"  # float32 [batch, mel_frames, mel_bins]: its log-mel, the audio input of runs before 0.4.0
AUDIO_PRESENT = "audio_present"  # float32 [batch, 1]: 0 when the clip's audio window is silent
TOKENS = "tokens"  # int32 [batch, text_length]: caption token ids, 0 = padding
FRAME_MASK = "frame_mask"  # float32 [batch, num_frames]: 1 for a real frame, 0 for padding
VIDEO_ID = "video_id"  # int64 [batch]: which video an evaluation view comes from (not a model input)
# int64 [batch]: which clip a training example comes from, a hash of its identity in [0, 2**24) (so that
# float32 holds it exactly); the views of one clip share it (`views_per_clip`; not a model input)
CLIP_ID = "clip_id"

# Model outputs.
CLASSES = "classes"  # float32 [batch, classes]: probabilities; auxiliary heads are "aux_<modality>"

# Exported signature.
SERVING_FRAMES = "frames"  # uint8 [batch, frames, height, width, 3]
SERVING_WAVEFORM = "waveform"  # float32 [batch, samples], mono at the dataset's sample rate
SERVING_CAPTION = "caption"  # string [batch], models with the text modality only
PROBABILITIES = "probabilities"
TOP_K_LABELS = "top_k_labels"
TOP_K_SCORES = "top_k_scores"
