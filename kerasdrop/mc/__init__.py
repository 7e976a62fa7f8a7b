"""Monte Carlo dropout: `MCDropout` turns a trained Keras model into one that predicts with uncertainty.

The modules read in the order a ``predict`` call runs through them:

- `predictor`: `MCDropout`, the loop of a call: inputs -> plan -> runner -> moments -> result;
- `selection`: which layers make noise and which of them sample; `probe`: noise in layers MCDropout does not know;
- `inputs`: arrays, datasets and generators, checked once and made tensors in the order of the model's inputs;
- `outputs`: how each output is read (probabilities, logits, regression), decided once;
- `plan`: the deterministic prefix of the graph (once per input) and the stochastic suffix (once per sample);
- `sampling_pass`: one pass of the suffix, each noise layer drawing from the seed states the pass hands it;
  `joint_draws` and `keras_rnn`: Keras's noise layers and RNNs when every input of a sample shares its network;
- `runner`: seed states, the compiled sampler, sub-batches and chunks of samples under the memory budget;
- `compile`: every backend branch: ``tf.function``, ``jax.jit``, eager PyTorch, replicas and devices;
- `moments`: running means, variances and entropies; `result`: `MCDropoutResult`;
- `export`: a TensorFlow SavedModel serving the moments; `mode`: `set_mc`, the layers' own Monte Carlo switch.
"""

from kerasdrop.mc.mode import set_mc
from kerasdrop.mc.predictor import MCDropout
from kerasdrop.mc.result import MCDropoutResult

__all__ = ["MCDropout", "MCDropoutResult", "set_mc"]
