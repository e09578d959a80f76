"""CoCa: CLIP's two towers plus a caption decoder (Yu et al. 2022)."""

import weakref

import keras
import numpy as np
from keras import ops

from keras_clip.encoders.hf_text_tower import HFTextTower
from keras_clip.models import towers
from keras_clip.models.caption_generation import METHODS
from keras_clip.models.caption_generation import generate_captions
from keras_clip.models.clip import CLIP
from keras_clip.models.clip import INPUT_KEYS
from keras_clip.objectives.captioning import caption_loss
from keras_clip.utils.checks import call_inputs
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_model_inputs
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.config import keep_config

# Each CoCa's compiled next-token step, kept outside the model (not saved).
_CAPTION_STEPS = weakref.WeakKeyDictionary()


class CaptionStep(keras.Model):
    """A CoCa's text tower and decoder as one model for `predict_on_batch`,
    which compiles it once per shape: the next-token logits (batch,
    vocabulary) at each caption's position in "positions"."""

    def __init__(self, text_encoder, text_decoder, **kwargs):
        super().__init__(**kwargs)
        self.text_encoder = text_encoder
        self.text_decoder = text_decoder

    def call(self, inputs):
        text_tokens = self.text_encoder(inputs["token_ids"])["sequence_output"]
        logits = self.text_decoder(text_tokens, inputs["image_tokens"])
        where = ops.one_hot(inputs["positions"], ops.shape(logits)[1], dtype=logits.dtype)
        return ops.cast(ops.sum(logits * where[:, :, None], axis=1), "float32")


@keras.saving.register_keras_serializable(package="keras_clip")
class CoCa(CLIP):
    """Contrastive captioner: CLIP plus a decoder that writes captions.

    The image tower returns its pooled features and its tokens (open_clip's
    CoCa: an `AttentionalPooler` of 256 queries, the first pooled); the
    text tower appends a class token, pooled for the contrastive embedding,
    and hands its caption tokens to the `MultimodalDecoder`, which attends
    over the image tokens and predicts each next token. The loss is
    `contrastive_loss_weight` x the objective (InfoNCE) + `caption_loss_weight`
    x the captions' next-token cross-entropy over their real tokens
    (open_clip's `CoCaLoss`, its default weights 1 and 2). Zero-shot
    classification, retrieval and export use the two towers as CLIP does;
    `generate` writes captions.

    Args:
        image_encoder: a `VisionTransformer` with `output_tokens=True`.
        text_encoder: a `TextTransformer` with `class_token=True` and
            `output_tokens=True`, or a `RobertaTextEncoder` with
            `output_tokens=True` (open_clip's `coca_roberta-ViT-B-32`).
        text_decoder: a `MultimodalDecoder`.
        embed_dim: int.
        caption_loss_weight: float.
        contrastive_loss_weight: float.
        pad_token_id: int. The padding id the caption loss leaves out.
        **kwargs: `CLIP`'s other arguments (objective, image_preprocessing, ...).

    Call arguments:
        inputs: dict with "images" and/or "token_ids".

    Returns:
        dict with "image_embeddings" and/or "text_embeddings" and, given
        both, "caption_logits" (batch, length - 1, vocabulary): position i
        predicts token i + 1.

    Example:

    ```python
    encoders = keras_clip.encoders
    vision = encoders.VisionTransformer(
        224, 32, width=64, num_layers=2, num_heads=4, attention_pool_queries=17,
        attention_pool_width=32, attention_pool_heads=4, output_tokens=True,
    )
    text = encoders.TextTransformer(
        tokenizer.vocabulary_size, tokenizer.context_length, width=32, num_layers=2,
        num_heads=4, class_token=True, output_tokens=True,
    )
    decoder = encoders.MultimodalDecoder(tokenizer.vocabulary_size, 32, num_layers=2, num_heads=4)
    model = keras_clip.CoCa(vision, text, decoder, embed_dim=32, pad_token_id=tokenizer.pad_id)
    model.compile()
    model.fit({"images": images, "token_ids": token_ids}, batch_size=8)
    token_ids = model.generate(
        images[:2], max_length=12, start_token_id=tokenizer.start_id,
        end_token_id=tokenizer.end_id,
    )
    ```

    open_clip's shapes build CoCa models too:
    `keras_clip.CLIP.from_architecture("coca_ViT-B-32")`, and
    `CLIP.from_pretrained` reads open_clip's CoCa checkpoints.
    """

    CONFIG_ATTRIBUTES = CLIP.CONFIG_ATTRIBUTES + (
        "caption_loss_weight",
        "contrastive_loss_weight",
        "pad_token_id",
    )

    def __init__(
        self,
        image_encoder,
        text_encoder,
        text_decoder,
        embed_dim,
        caption_loss_weight=2.0,
        contrastive_loss_weight=1.0,
        pad_token_id=0,
        **kwargs,
    ):
        for name, encoder in (("image_encoder", image_encoder), ("text_encoder", text_encoder)):
            if not getattr(encoder, "output_tokens", False):
                raise ValueError(f"CoCa's {name} must return its tokens too (output_tokens=True).")
        if kwargs.get("micro_batches", 1) != 1:
            raise ValueError("CoCa trains without micro_batches (micro_batches=1).")
        super().__init__(image_encoder, text_encoder, embed_dim, **kwargs)
        keep_config(self, locals(), CoCa.CONFIG_ATTRIBUTES[len(CLIP.CONFIG_ATTRIBUTES) :])

        # === Layers ===
        self.text_decoder = text_decoder

        # === Metrics ===
        self.caption_loss_tracker = keras.metrics.Mean(name="caption_loss")
        self._build_if_shapes_known()

    def _build_if_shapes_known(self):
        if getattr(self, "text_decoder", None) is not None:  # not in CLIP's constructor
            super()._build_if_shapes_known()

    def _tower_outputs(self, encoder, inputs, training):
        outputs = encoder(inputs, training=training)
        return outputs["pooled_output"], outputs["sequence_output"]

    def call(self, inputs, training=None):
        check_model_inputs(inputs, INPUT_KEYS)
        outputs, image_tokens, text_tokens = {}, None, None
        if "images" in inputs:
            check_images(inputs["images"])
            pooled, image_tokens = self._tower_outputs(
                self.image_encoder, inputs["images"], training
            )
            outputs["image_embeddings"] = self._project(self.image_projection, pooled, training)
        if "token_ids" in inputs:
            token_ids = inputs["token_ids"]
            check_token_ids(token_ids, self.text_encoder.context_length)
            pooled, text_tokens = self._tower_outputs(self.text_encoder, token_ids, training)
            outputs["text_embeddings"] = self._project(self.text_projection, pooled, training)
        if image_tokens is not None and text_tokens is not None:
            outputs["caption_logits"] = self.text_decoder(text_tokens[:, :-1], image_tokens)
        return outputs

    def fit(self, *args, **kwargs):
        self._check_caption_ids(call_inputs(args, kwargs))
        return super().fit(*args, **kwargs)

    def evaluate(self, *args, **kwargs):
        self._check_caption_ids(call_inputs(args, kwargs))
        return super().evaluate(*args, **kwargs)

    def _check_caption_ids(self, x):
        """Token ids as arrays must be ids the decoder predicts: the caption
        loss would score any other as nothing (coca_roberta-ViT-B-32: RoBERTa
        has 50,265 ids, open_clip's decoder 49,408)."""
        token_ids = x.get("token_ids") if isinstance(x, dict) else None
        if not isinstance(token_ids, np.ndarray) or not token_ids.size:
            return
        vocabulary = self.text_decoder.vocabulary_size
        if int(token_ids.max()) >= vocabulary:
            raise ValueError(
                f"Caption token id {int(token_ids.max())} is beyond the decoder's vocabulary "
                f"of {vocabulary} (open_clip's text_cfg.vocab_size): the caption loss cannot "
                "score it."
            )

    def _objective_loss(self, x, y_pred, training):
        contrastive = super()._objective_loss(x, y_pred, training)
        captions = caption_loss(y_pred["caption_logits"], x["token_ids"], self.pad_token_id)
        self.caption_loss_tracker.update_state(captions)
        return self.contrastive_loss_weight * contrastive + self.caption_loss_weight * captions

    # === Captioning ===

    def caption_logits(self, images, token_ids):
        """Next-token logits (batch, length, vocabulary) of captions (whole
        or begun) of `images`: position i predicts token i + 1."""
        _, image_tokens = self._tower_outputs(self.image_encoder, images, False)
        _, text_tokens = self._tower_outputs(self.text_encoder, token_ids, False)
        return self.text_decoder(text_tokens, image_tokens)

    def generate(
        self,
        images,
        max_length=30,
        min_length=5,
        method="greedy",
        top_k=None,
        top_p=None,
        temperature=1.0,
        seed=None,
        start_token_id=49406,
        end_token_id=49407,
    ):
        """Captions of `images` as token ids, one row per image.

        Each caption starts with `start_token_id` and ends at
        `end_token_id` (forced at `max_length`); the end token cannot come
        before `min_length` tokens; rows that ended early are padded with
        `pad_token_id` (a RoBERTa text tower's own padding id;
        `keras_clip.models.caption_generation`: open_clip's
        `CoCa.generate` in its "top_k" and "top_p" modes; greedy is its
        top_k=1). Beam search is not offered.

        Args:
            images: float (batch, H, W, 3), preprocessed as the model wants.
            max_length: int. Tokens per caption, start and end included
                (at most the text tower's context length).
            min_length: int. The end token is refused before this many.
            method: "greedy" or "sample" (top-k and/or top-p, with
                `temperature`).
            top_k: int or None. For "sample": keep the k likeliest tokens.
            top_p: float or None. For "sample": keep the likeliest tokens
                whose probabilities sum to at least top_p.
            temperature: float. For "sample".
            seed: int or None. For "sample".
            start_token_id: int. OpenAI's BPE: 49406.
            end_token_id: int. OpenAI's BPE: 49407.

        Returns:
            int32 NumPy array (batch, length <= max_length); the
            tokenizer's `detokenize` turns a row into text.
        """
        if method not in METHODS:
            raise ValueError(f"Unknown method {method!r}; expected one of {METHODS}.")
        context = self.text_encoder.context_length
        if not 1 < max_length <= context:
            raise ValueError(
                f"max_length must be in [2, {context}] (the context), got {max_length}."
            )
        vocabulary = self.text_decoder.vocabulary_size
        for name, value in (("start_token_id", start_token_id), ("end_token_id", end_token_id)):
            if not 0 <= value < vocabulary:
                raise ValueError(f"{name}={value} is outside the vocabulary [0, {vocabulary}).")
        check_images(images, towers.image_size_of(self.image_encoder))
        _, image_tokens = self._tower_outputs(self.image_encoder, images, False)

        step = _CAPTION_STEPS.get(self)
        if step is None:
            step = _CAPTION_STEPS[self] = CaptionStep(self.text_encoder, self.text_decoder)
        batch = int(ops.shape(image_tokens)[0])

        def next_logits(token_ids, position):
            inputs = {
                "token_ids": token_ids,
                "image_tokens": image_tokens,
                "positions": np.full((batch,), position, "int32"),
            }
            return ops.convert_to_numpy(step.predict_on_batch(inputs))

        return generate_captions(
            next_logits,
            batch_size=batch,
            max_length=max_length,
            min_length=min_length,
            method=method,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            rng=np.random.default_rng(seed),
            start_token_id=start_token_id,
            end_token_id=end_token_id,
            pad_token_id=self._generation_pad_token_id(),
        )

    def _generation_pad_token_id(self):
        """What fills a caption's unwritten positions: a bidirectional
        (Hugging Face) text tower would see them, so they hold the padding
        it masks; CLIP's causal tower never looks ahead."""
        if isinstance(self.text_encoder, HFTextTower):
            return self.text_encoder.pad_token_id
        return self.pad_token_id

    # === Config ===

    def get_config(self):
        return {
            **super().get_config(),
            "text_decoder": keras.saving.serialize_keras_object(self.text_decoder),
        }

    @classmethod
    def from_config(cls, config):
        config["text_decoder"] = keras.saving.deserialize_keras_object(config["text_decoder"])
        return super().from_config(config)
