"""CLIP and CLIP-Lite: two towers projected into one normalised space."""

import keras
from keras import ops

from keras_clip import objectives
from keras_clip.keras_workarounds import DistributedBuild
from keras_clip.keras_workarounds import ExplicitSignatures
from keras_clip.layers.projection_block import ProjectionBlock
from keras_clip.metrics import MutualInformation
from keras_clip.metrics import RetrievalRecall
from keras_clip.models import towers
from keras_clip.models.checked_calls import CheckedCalls
from keras_clip.models.compilation import FastestJit
from keras_clip.models.micro_batches import encode_in_slices
from keras_clip.models.optimizer import default_optimizer
from keras_clip.models.preprocessing import ImagePreprocessing
from keras_clip.models.preprocessing import upgrade_preprocessing_config
from keras_clip.objectives import distributed as distribute
from keras_clip.objectives.functional import l2_normalize
from keras_clip.utils.checks import check_images
from keras_clip.utils.checks import check_model_inputs
from keras_clip.utils.checks import check_no_targets
from keras_clip.utils.checks import check_positive_ints
from keras_clip.utils.checks import check_token_ids
from keras_clip.utils.config import base_model_config
from keras_clip.utils.config import keep_config

PROJECTIONS = ("linear", "mlp")
INPUT_KEYS = ("images", "token_ids")


@keras.saving.register_keras_serializable(package="keras_clip")
class CLIP(FastestJit, CheckedCalls, DistributedBuild, ExplicitSignatures, keras.Model):
    """Contrastive language-image model (Radford et al. 2021).

    Each tower's features are pooled (see `keras_clip.models.towers`),
    projected to `embed_dim` and L2-normalised. Training needs no targets:
    `compute_loss` scores every image against every caption of the batch
    with the objective layer, which owns the objective's weights (e.g. the
    learnable logit scale), and updates in-batch recall@1 in both directions
    and, where the objective bounds one (InfoNCE, JSD), its
    mutual-information estimate ("mi").

    Args:
        image_encoder: Keras model, images -> features (see
            `keras_clip.encoders`, or any model such as keras-hub's
            `CLIPVisionEncoder` or a `keras.applications` backbone).
        text_encoder: Keras model, int token ids -> features.
        embed_dim: int. Width of the joint embedding space.
        objective: "infonce", "jsd", "siglip" or a loss layer from
            `keras_clip.objectives` (e.g. `InfoNCELoss(temperature=0.05)`).
        projection: "linear" (bias-free Dense, CLIP) or "mlp"
            (`ProjectionBlock`, CLIP-Lite).
        image_pooling: how a sequence from the image tower is pooled:
            "auto"/"first" (class token) or "mean".
        text_pooling: how a sequence from the text tower is pooled:
            "auto"/"end_token", "first" or "mean".
        end_token_id: int or None. End-of-text id for "end_token" pooling
            (None: the text encoder's own `end_token_id`, else the largest id).
        project_image: bool. False uses the image tower's pooled features
            (which must be `embed_dim` wide) as they are: OpenAI's ResNets
            project inside their attention pool, SigLIP's towers in their
            heads.
        project_text: bool. The same for the text tower (False for SigLIP).
        micro_batches: int. In training, run each tower on this many slices
            of the batch with gradient checkpointing
            (`keras_clip.models.micro_batches`): the loss still contrasts
            the whole batch, and the activation memory is one slice's. The
            projection heads see the whole batch (CLIP-Lite's BatchNorm
            included). Can be changed on a built model
            (`model.micro_batches = 8`).
        image_preprocessing: a `keras_clip.models.ImagePreprocessing` (or
            its config dict): the normalisation and resizing the image tower
            expects, saved with the model and taken whole by the data
            pipeline, zero-shot and export (None: OpenAI's CLIP settings).

    Call arguments:
        inputs: dict with "images" (float (B, H, W, 3); for a NaFlex tower
            a dict of "patches" and "spatial_shapes", see
            `keras_clip.data.naflex`) and/or "token_ids" (int (B, L)).

    Returns:
        dict with "image_embeddings" and/or "text_embeddings", float32
        (B, embed_dim), unit L2 norm.

    Example:

    ```python
    model = keras_clip.CLIP.from_architecture(
        "tiny-vit", image_size=224, patch_size=32,
        vocabulary_size=tokenizer.vocabulary_size, context_length=tokenizer.context_length,
    )
    model.compile()
    model.fit({"images": images, "token_ids": token_ids}, batch_size=32)
    model.encode_image(images)
    ```
    """

    # The constructor arguments kept as attributes; get_config returns them.
    CONFIG_ATTRIBUTES = (
        "embed_dim",
        "projection",
        "image_pooling",
        "text_pooling",
        "end_token_id",
        "project_image",
        "project_text",
        "micro_batches",
    )

    def __init__(
        self,
        image_encoder,
        text_encoder,
        embed_dim,
        objective="infonce",
        projection="linear",
        image_pooling="auto",
        text_pooling="auto",
        end_token_id=None,
        project_image=True,
        project_text=True,
        micro_batches=1,
        image_preprocessing=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_positive_ints(embed_dim=embed_dim, micro_batches=micro_batches)
        if projection not in PROJECTIONS:
            raise ValueError(f"Unknown projection {projection!r}; expected one of {PROJECTIONS}.")
        towers.check_pooling(image_pooling, text_pooling)
        if end_token_id is None:
            end_token_id = getattr(text_encoder, "end_token_id", None)
        keep_config(self, locals(), CLIP.CONFIG_ATTRIBUTES)
        if isinstance(image_preprocessing, dict):
            image_preprocessing = ImagePreprocessing.from_config(image_preprocessing)
        self._image_preprocessing = image_preprocessing or ImagePreprocessing()

        # === Layers ===
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_projection = self._make_projection("image_projection") if project_image else None
        self.text_projection = self._make_projection("text_projection") if project_text else None
        self.objective = objectives.get(objective)
        if not self.objective.built:
            self.objective.build((None, embed_dim))

        # === Metrics ===
        self.image_to_text_recall = RetrievalRecall(1, "image_to_text")
        self.text_to_image_recall = RetrievalRecall(1, "text_to_image")
        estimator = self.objective.mutual_information_estimator
        self.mutual_information = (
            None if estimator is None else MutualInformation(estimator, name="mi")
        )
        self._build_if_shapes_known()

    def _build_if_shapes_known(self):
        input_shape = towers.known_input_shape(self.image_encoder, self.text_encoder)
        if input_shape is not None:
            self.build(input_shape)

    def build(self, input_shape):
        """Builds every weight by tracing `call` on symbolic inputs.

        Args:
            input_shape: dict with "images" (batch, H, W, 3) (for a NaFlex
                tower, a dict of "patches" and "spatial_shapes" shapes) and
                "token_ids" (batch, length) shapes.
        """
        inputs = towers.symbolic_inputs(input_shape)
        # Layer.compute_output_spec traces `call` symbolically, building
        # the towers, heads and their weights.
        self.compute_output_spec(inputs)
        self.built = True

    def _make_projection(self, name):
        if self.projection == "mlp":
            return ProjectionBlock(self.embed_dim, dtype=self.dtype_policy, name=name)
        return keras.layers.Dense(
            self.embed_dim, use_bias=False, dtype=self.dtype_policy, name=name
        )

    # === Encoding ===

    def encode_image(self, images, training=False):
        """Normalised float32 image embeddings, (batch, embed_dim)."""
        features = self._image_features(images, training)
        return self._project(self.image_projection, features, training)

    def encode_text(self, token_ids, training=False):
        """Normalised float32 text embeddings, (batch, embed_dim)."""
        features = self._text_features(token_ids, training)
        return self._project(self.text_projection, features, training)

    def _image_features(self, images, training):
        if not isinstance(images, dict):  # NaFlex towers check their own dict
            check_images(images)
        features = towers.call_tower(self.image_encoder, images, "images", training)
        return towers.pool_image_features(features, self.image_pooling)

    def _text_features(self, token_ids, training):
        check_token_ids(token_ids, getattr(self.text_encoder, "context_length", None))
        features = towers.call_tower(self.text_encoder, token_ids, "token_ids", training)
        return towers.pool_text_features(features, token_ids, self.text_pooling, self.end_token_id)

    def _project(self, head, features, training):
        if head is None:
            if features.shape[-1] not in (None, self.embed_dim):
                raise ValueError(
                    f"Without a projection (project_image or project_text False) the "
                    f"tower must output embed_dim={self.embed_dim} features; it gives "
                    f"{features.shape[-1]}."
                )
            embeddings = features
        elif self.projection == "mlp":
            embeddings = head(features, training=training)
        else:
            embeddings = head(features)
        return l2_normalize(embeddings)

    def call(self, inputs, training=None):
        check_model_inputs(inputs, INPUT_KEYS)
        outputs = {}
        micro_batches = self.micro_batches if training else 1
        for key, name, tower_features, head in (
            ("images", "image_embeddings", self._image_features, self.image_projection),
            ("token_ids", "text_embeddings", self._text_features, self.text_projection),
        ):
            if key in inputs:
                # Towers a slice at a time; the heads see the whole batch.
                features = encode_in_slices(
                    lambda x, tower_features=tower_features: tower_features(x, training),
                    inputs[key],
                    micro_batches,
                    self,
                )
                outputs[name] = self._project(head, features, training)
        return outputs

    # === Training ===

    def compile(self, optimizer=None, **kwargs):
        """Like `keras.Model.compile`; the optimizer defaults to CLIP's AdamW
        (`models.optimizer`), and `jit_compile="auto"` picks XLA on
        TensorFlow where it is faster and works (`models.compilation`)."""
        if "loss" in kwargs:
            raise ValueError(
                "CLIP computes its own loss from the objective "
                f"({type(self.objective).__name__}); do not pass `loss`."
            )
        super().compile(optimizer=optimizer or default_optimizer(), **kwargs)

    def compile_from_config(self, config):
        """Recompiles a loaded model (optimizer and its state included)."""
        config = keras.saving.deserialize_keras_object(config)
        config.pop("loss", None)
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is not None or sample_weight is not None:  # e.g. from a dataset
            check_no_targets("compute_loss", (x, y), {"sample_weight": sample_weight})
        if y_pred is None:
            y_pred = self(x, training=training)
        missing = {"image_embeddings", "text_embeddings"} - set(y_pred)
        if missing:
            raise ValueError(
                "Training needs both 'images' and 'token_ids' in each batch; "
                f"the batch gave no {sorted(missing)}."
            )
        if y_pred["image_embeddings"].shape[0] == 1:
            raise ValueError(
                "A contrastive objective needs at least 2 examples per batch; "
                "received a batch of 1."
            )
        loss = self._objective_loss(x, y_pred, training)
        if self.losses:
            regularization = [ops.cast(term, "float32") for term in self.losses]
            loss = loss + ops.sum(ops.stack(regularization))
        # Under tf.distribute Keras sums the replicas' values and gradients.
        return distribute.replica_share(loss)

    def _objective_loss(self, x, y_pred, training):
        """The objective's loss on the batch's embeddings; updates the metrics."""
        loss, scores = self.objective.compute(
            y_pred["image_embeddings"], y_pred["text_embeddings"], training=training
        )
        recalls = (self.image_to_text_recall, self.text_to_image_recall)
        for metric in (*recalls, self.mutual_information):
            if metric is not None:
                metric.update_state(scores)
        return loss

    @property
    def logit_scale(self):
        """The objective's current logit scale (exp of its log weight)."""
        return self.objective.logit_scale

    @property
    def image_size(self):
        """The side, in pixels, of the images the image tower takes."""
        return towers.image_size_of(self.image_encoder)

    @property
    def image_preprocessing(self):
        """The model's `ImagePreprocessing`, its `image_size` the tower's."""
        try:
            return self._image_preprocessing.with_size(self.image_size)
        except ValueError:  # a tower that declares no input size
            return self._image_preprocessing

    @property
    def logit_bias(self):
        """The objective's logit bias (SigLIP's sigmoid objective), else None:
        logits are logit_scale * cosine + logit_bias."""
        return getattr(self.objective, "logit_bias", None)

    # === Config ===

    def get_config(self):
        return {
            **base_model_config(self),
            "image_encoder": keras.saving.serialize_keras_object(self.image_encoder),
            "text_encoder": keras.saving.serialize_keras_object(self.text_encoder),
            "objective": keras.saving.serialize_keras_object(self.objective),
            "image_preprocessing": self.image_preprocessing.get_config(),
        }

    @classmethod
    def from_config(cls, config):
        config = upgrade_preprocessing_config(config)
        for key in ("image_encoder", "text_encoder", "objective"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)

    @classmethod
    def from_architecture(cls, name, **overrides):
        """A randomly initialised model of a named shape: open_clip's names
        ("RN50", "ViT-B-32", "ViT-B-32-quickgelu" for OpenAI's activation,
        "ViT-H-14", ...) or keras-clip's CPU-sized "shapes-vit", "tiny-vit",
        ... (`keras_clip.models.architecture_names()`), with `overrides`:
        shape fields (image_size, patch_size, vocabulary_size,
        context_length, embed_dim, activation, ...) and model arguments
        (objective, ...).

        Example:

        ```python
        CLIP.from_architecture("ViT-B-32", vocabulary_size=8000)
        ```
        """
        from keras_clip.models.architectures import build_architecture

        return build_architecture(cls, name, **overrides)

    @classmethod
    def from_pretrained(cls, path, architecture=None, **kwargs):
        """A model with a published checkpoint's weights, from local files:
        a Hugging Face `CLIPModel` or `SiglipModel` directory, an open_clip
        directory or state dict, OpenAI's files, a keras-hub CLIP or SigLIP
        preset, or a `.keras` file (`keras_clip.pretrained.loading`). Loading
        is all or nothing: a missing, unexpected or misshapen tensor, or an
        open_clip option that would compute differently, raises an error
        naming it. The checkpoint's image preprocessing is kept
        (`model.image_preprocessing`).

        Args:
            path: the directory or file.
            architecture: for state dicts other than OpenAI's: an open_clip
                name ("ViT-B-32"; "-quickgelu" for OpenAI's weights) or model
                config (dict or JSON path).
            **kwargs: model arguments (objective, micro_batches, ...).

        Example:

        ```python
        model = keras_clip.CLIP.from_pretrained("clip-vit-base-patch32/")
        ```
        """
        from keras_clip.pretrained import loading  # a floor up: they build CLIP

        return loading.from_pretrained(cls, path, architecture, **kwargs)

    def save_pretrained(self, path, format="huggingface"):
        """Writes the model for the PyTorch world: format "huggingface"
        (transformers' `CLIPModel`, or `SiglipModel` for SigLIP towers, loads
        it) or "open_clip" (open_clip_config.json and its safetensors).

        Example:

        ```python
        model.save_pretrained("fine-tuned/", format="huggingface")
        ```
        """
        from keras_clip.pretrained import loading

        loading.save_pretrained(self, path, format)
