"""Feature extractors: the encoders stable-baselines3 policies put in front of their heads.

Three extractors, chosen by the observation space (``extractor_for``):

- ``VectorEncoder`` for float vectors (``lidar``, ``kinematics``): an MLP with LayerNorm on the
  input (the vector mixes normalised ranges and signed route features of different spread).
- ``CameraCNN`` for camera frames. **Layout: uint8, channel-first (C, H, W).** The env emits
  channel-last (H, W, C) frames (Gymnasium's convention); the training code wraps its vector env in
  SB3's ``VecTransposeImage`` itself (``agents.training.sb3_train.make_vec_env``), in plain sight, and SB3's
  ``predict`` transposes single frames the same way. The encoder divides by 255 inside, so the policy
  is built with ``normalize_images=False`` and nothing else rescales the pixels. Convolutions are
  Nature-DQN's (8/4, 4/2, 3/1 with 32/64/64 channels, configurable) and a ``features_dim`` head;
  the zoo's camera agent uses 16/32/32 channels and 128 features to stay under 5 MB with its optimiser.
- ``MultiEncoder`` for ``multi`` Dict observations: ``CameraCNN`` on every image entry, one
  ``VectorEncoder`` over the other entries concatenated, and the outputs concatenated.

Each extractor takes the observation space, infers its flatten size with one dry forward pass and
fails with a message that says what it expected. (SB3's own NatureCNN and CombinedExtractor rescale
and transpose by convention; these say what they take.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn


def _is_image(space: spaces.Space) -> bool:
    return isinstance(space, spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _mlp(n_in: int, sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = [nn.LayerNorm(n_in)]
    for n_out in sizes:
        layers += [nn.Linear(n_in, n_out), nn.Tanh()]
        n_in = n_out
    return nn.Sequential(*layers)


class VectorEncoder(BaseFeaturesExtractor):
    """MLP over a flat float vector observation.

    Args:
        observation_space: a 1-D float Box.
        hidden: layer sizes; the last is the feature size.
    """

    def __init__(self, observation_space: spaces.Box, hidden: Sequence[int] = (256,)) -> None:
        if not (isinstance(observation_space, spaces.Box) and len(observation_space.shape) == 1):
            raise ValueError(
                f"VectorEncoder: expected a 1-D Box (lidar or kinematics observation), got {observation_space}; "
                "use CameraCNN for images and MultiEncoder for Dict observations"
            )
        if not hidden:
            raise ValueError("VectorEncoder: hidden must name at least one layer size")
        super().__init__(observation_space, features_dim=int(hidden[-1]))
        self.net = _mlp(int(observation_space.shape[0]), hidden)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Features of a batch of vectors (B, N)."""
        return self.net(obs.float())


class CameraCNN(BaseFeaturesExtractor):
    """CNN over uint8 channel-first frames (B, C, H, W); pixels are divided by 255 here.

    Args:
        observation_space: a uint8 Box of shape (C, H, W) with C in 1..4 (after VecTransposeImage).
        features_dim: size of the output features.
        channels: output channels of the three convolutions.
    """

    def __init__(self, observation_space: spaces.Box, features_dim: int = 256, channels: Sequence[int] = (32, 64, 64)) -> None:
        if not _is_image(observation_space):
            raise ValueError(f"CameraCNN: expected a uint8 image Box (C, H, W), got {observation_space}")
        c, h, w = observation_space.shape
        if c > 4 and w <= 4:
            raise ValueError(
                f"CameraCNN: observation space {observation_space.shape} looks channel-last (H, W, C); this encoder takes "
                "channel-first (C, H, W): wrap the vec env in VecTransposeImage as agents.training.sb3_train.make_vec_env does"
            )
        if min(h, w) < 36:
            raise ValueError(f"CameraCNN: frames must be at least 36x36 for its 8/4, 4/2, 3/1 convolutions, got {h}x{w}")
        if len(channels) != 3:
            raise ValueError(f"CameraCNN: channels names the three convolutions' widths, got {list(channels)}")
        super().__init__(observation_space, features_dim)
        c1, c2, c3 = (int(n) for n in channels)
        self.cnn = nn.Sequential(
            nn.Conv2d(c, c1, kernel_size=8, stride=4),
            nn.ReLU(),
            nn.Conv2d(c1, c2, kernel_size=4, stride=2),
            nn.ReLU(),
            nn.Conv2d(c2, c3, kernel_size=3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():  # one dry pass for the flatten size
            n_flat = self.cnn(torch.zeros(1, c, h, w)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, features_dim), nn.ReLU())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Features of a batch of frames (B, C, H, W), uint8 values as floats or bytes."""
        return self.head(self.cnn(obs.float() / 255.0))


def random_shift(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Random-shift augmentation (DrQ, Kostrikov et al. 2020): pad by replicating edges, crop back at a random offset per frame.

    Implemented as one ``grid_sample`` with integer pixel offsets, so a batch costs one call;
    offsets come from torch's generator (seeded by the training run).
    """
    import torch.nn.functional as F

    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    eps_h, eps_w = 1.0 / (h + 2 * pad), 1.0 / (w + 2 * pad)
    ar_h = torch.linspace(-1.0 + eps_h, 1.0 - eps_h, h + 2 * pad, device=x.device)[:h]
    ar_w = torch.linspace(-1.0 + eps_w, 1.0 - eps_w, w + 2 * pad, device=x.device)[:w]
    base = torch.stack(torch.meshgrid(ar_w, ar_h, indexing="xy"), dim=-1)  # (h, w, 2) as (x, y)
    shift = torch.randint(0, 2 * pad + 1, (b, 1, 1, 2), device=x.device).float()
    shift = shift * torch.tensor([2.0 * eps_w, 2.0 * eps_h], device=x.device)
    return F.grid_sample(padded, base[None] + shift, padding_mode="zeros", align_corners=False)


class PerceptionCNN(BaseFeaturesExtractor):
    """The perception net's encoder (``perception.model.Encoder``) as a policy's CNN, so pre-trained weights can start it.

    Args:
        observation_space: a uint8 Box (3, H, W) (after VecTransposeImage).
        features_dim: size of the output features (a linear layer over the flattened last map).
        channels: the encoder's stage widths (the perception net's by default, so its weights fit).
        shift_pad: random-shift augmentation of ``shift_pad`` pixels while the policy trains
            (SB3 puts the policy in training mode only for its updates); 0 for none.

    Batch norms stay in inference mode: SB3 collects with the policy in eval mode and updates in
    training mode, and batch statistics would make the update's log-probabilities those of another
    function than the one that acted (PPO's ratio would be off from the first minibatch). Their
    scales and shifts still train. Pre-trained weights are copied in after the model is built
    (``load_encoder_weights``), so a saved policy never refers to the file.
    """

    def __init__(
        self, observation_space: spaces.Box, features_dim: int = 128, channels: Sequence[int] = (16, 32, 64, 64), shift_pad: int = 0
    ) -> None:
        from perception.model import Encoder

        if not _is_image(observation_space) or observation_space.shape[0] != 3:
            raise ValueError(f"PerceptionCNN: expected a uint8 RGB image Box (3, H, W), got {observation_space}")
        super().__init__(observation_space, features_dim)
        self.encoder = Encoder([int(c) for c in channels])
        self.shift_pad = int(shift_pad)
        with torch.no_grad():
            n_flat = self.encoder(torch.zeros(1, *observation_space.shape))[-1].flatten(1).shape[1]
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(n_flat, features_dim), nn.ReLU())

    def train(self, mode: bool = True) -> PerceptionCNN:
        """Training mode for the augmentation; the batch norms stay in inference mode."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.eval()
        return self

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Features of a batch of frames (B, 3, H, W), uint8 values as floats or bytes."""
        x = obs.float() / 255.0
        if self.training and self.shift_pad > 0:
            x = random_shift(x, self.shift_pad)
        return self.head(self.encoder(x)[-1])


def copy_encoder(encoder: nn.Module, state: Mapping[str, torch.Tensor], field: str, where: str, shape: str) -> None:
    """Copy the ``encoder.*`` weights of a perception net's or pre-training run's ``state`` into ``encoder``.

    ``field`` names the setting that gave the file, ``where`` the file and ``shape`` what it must fit, for the
    one-line errors.
    """
    enc = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    if not enc:
        raise ValueError(f"{field}: {where} holds no encoder weights")
    try:
        encoder.load_state_dict(enc)
    except RuntimeError as err:
        raise ValueError(f"{field}: {where} does not fit {shape} ({str(err).splitlines()[0][:160]})") from None


def load_encoder_weights(extractor: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    """Copy a perception net's or a pre-training run's ``encoder.*`` weights into a ``PerceptionCNN``."""
    if not isinstance(extractor, PerceptionCNN):
        raise ValueError(f"policy.cnn_weights: needs policy.cnn: perception (the extractor is {type(extractor).__name__})")
    copy_encoder(extractor.encoder, state, "policy.cnn_weights", where, "policy.cnn_channels")


class MultiEncoder(BaseFeaturesExtractor):
    """Dict observation: CameraCNN per image entry, one VectorEncoder over the rest, concatenated.

    Args:
        observation_space: a Dict of image Boxes (C, H, W) and flat float Boxes.
        cnn_features_dim: features per image entry.
        channels: CameraCNN convolution widths.
        hidden: VectorEncoder layer sizes for the non-image entries.
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        cnn_features_dim: int = 256,
        channels: Sequence[int] = (32, 64, 64),
        hidden: Sequence[int] = (128,),
    ) -> None:
        if not isinstance(observation_space, spaces.Dict):
            raise ValueError(f"MultiEncoder: expected a Dict observation space, got {observation_space}")
        images = [k for k, s in observation_space.spaces.items() if _is_image(s)]
        vectors = [k for k in observation_space.spaces if k not in images]
        for k in vectors:
            s = observation_space[k]
            if not isinstance(s, spaces.Box):
                raise ValueError(f"MultiEncoder: entry {k!r} must be a Box, got {s}")
        n_vec = sum(int(np.prod(observation_space[k].shape)) for k in vectors)
        dim = cnn_features_dim * len(images) + (int(hidden[-1]) if vectors else 0)
        super().__init__(observation_space, features_dim=dim)
        self.images = images
        self.vectors = vectors
        self.cnns = nn.ModuleDict({k: CameraCNN(observation_space[k], cnn_features_dim, channels) for k in images})
        self.mlp = VectorEncoder(spaces.Box(-np.inf, np.inf, (n_vec,), np.float32), hidden) if vectors else None

    def forward(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Concatenated features of every entry."""
        parts = [self.cnns[k](obs[k]) for k in self.images]
        if self.mlp is not None:
            flat = torch.cat([obs[k].float().flatten(1) for k in self.vectors], dim=1)
            parts.append(self.mlp(flat))
        return torch.cat(parts, dim=1)


def extractor_for(observation_space: spaces.Space) -> type[BaseFeaturesExtractor]:
    """The extractor class for an observation space (after VecTransposeImage for images)."""
    if isinstance(observation_space, spaces.Dict):
        return MultiEncoder
    if _is_image(observation_space):
        return CameraCNN
    return VectorEncoder
