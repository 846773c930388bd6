"""The zoo: common architectures from torchvision and transformers, random weights, as users export them.

Each entry builds a torch module (eval mode, deterministic weights: seed 0, BatchNorm statistics from a few
train-mode passes) and says how to make its inputs. bench/zoo.py exports, builds, checks and times them.
No kiln pass or tactic may key on anything here: these are stand-ins for the models users bring.
"""
import torch

# name -> (category, factory). A factory returns (module, {input name: per-sample dims}, input kind).
# Input kinds: "image"/"audio"/"features" (float, N(0, 1)), "tokens:V" (int64 ids below V).
ZOO = {}


def entry(name, category):
    def add(fn):
        ZOO[name] = (category, fn)
        return fn
    return add


def tv(name, **kw):
    import torchvision
    return getattr(torchvision.models, name)(weights=None, **kw)


IMG = {"image": [3, 224, 224]}


# Dense CNNs
@entry("resnet50", "dense CNN")
def _resnet50():
    return tv("resnet50"), IMG, "image"


@entry("densenet121", "dense CNN")
def _densenet121():
    return tv("densenet121"), IMG, "image"


# Depthwise / grouped CNNs, squeeze-excitation
@entry("resnext50_32x4d", "grouped CNN")
def _resnext():
    return tv("resnext50_32x4d"), IMG, "image"


@entry("mobilenet_v2", "depthwise CNN")
def _mnv2():
    return tv("mobilenet_v2"), IMG, "image"


@entry("mobilenet_v3_large", "depthwise CNN + SE")
def _mnv3():
    return tv("mobilenet_v3_large"), IMG, "image"


@entry("efficientnet_b0", "depthwise CNN + SE")
def _effb0():
    return tv("efficientnet_b0"), IMG, "image"


@entry("regnet_y_800mf", "grouped CNN + SE")
def _regnet():
    return tv("regnet_y_800mf"), IMG, "image"


@entry("shufflenet_v2_x1_0", "depthwise CNN + channel shuffle")
def _shufflenet():
    return tv("shufflenet_v2_x1_0"), IMG, "image"


# ConvNeXt-style
@entry("convnext_tiny", "ConvNeXt (7x7 depthwise, channels-last LayerNorm)")
def _convnext():
    return tv("convnext_tiny"), IMG, "image"


# Vision transformers
@entry("vit_b_16", "vision transformer")
def _vit():
    return tv("vit_b_16"), IMG, "image"


@entry("swin_t", "windowed vision transformer")
def _swin():
    return tv("swin_t"), IMG, "image"


# Encoder transformers
@entry("bert_base", "encoder transformer")
def _bert():
    from transformers import BertConfig, BertModel
    return BertModel(BertConfig()), {"input_ids": [128]}, "tokens:30522"


@entry("distilbert", "encoder transformer")
def _distilbert():
    from transformers import DistilBertConfig, DistilBertModel
    return DistilBertModel(DistilBertConfig()), {"input_ids": [128]}, "tokens:30522"


@entry("t5_small_encoder", "encoder (relative position bias, RMSNorm; encoder-decoder's encoder)")
def _t5():
    from transformers import T5Config, T5EncoderModel
    return T5EncoderModel(T5Config(use_cache=False)), {"input_ids": [128]}, "tokens:32128"


@entry("bart_base_encoder", "encoder-decoder's encoder")
def _bart():
    from transformers import BartConfig, BartModel
    return BartModel(BartConfig(use_cache=False)).get_encoder(), {"input_ids": [128]}, "tokens:50265"


# Decoders
@entry("gpt2", "decoder (GPT-2)")
def _gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel
    return GPT2LMHeadModel(GPT2Config(use_cache=False)), {"input_ids": [256]}, "tokens:50257"


@entry("llama_gqa", "decoder (Llama: rotary, GQA, RMSNorm, SwiGLU)")
def _llama():
    from transformers import LlamaConfig, LlamaForCausalLM
    cfg = LlamaConfig(vocab_size=32000, hidden_size=1024, intermediate_size=2816, num_hidden_layers=8,
                      num_attention_heads=16, num_key_value_heads=4, max_position_embeddings=2048, use_cache=False)
    return LlamaForCausalLM(cfg), {"input_ids": [256]}, "tokens:32000"


@entry("qwen2_gqa", "decoder (Qwen2: rotary, GQA with q/k/v bias)")
def _qwen2():
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=32000, hidden_size=896, intermediate_size=4864, num_hidden_layers=8,
                      num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=2048, use_cache=False)
    return Qwen2ForCausalLM(cfg), {"input_ids": [256]}, "tokens:32000"


# Audio
@entry("whisper_base_encoder", "audio encoder (1-D convs + attention)")
def _whisper():
    from transformers import WhisperConfig, WhisperModel
    cfg = WhisperConfig(d_model=512, encoder_layers=6, encoder_attention_heads=8, decoder_layers=1,
                        decoder_attention_heads=8, encoder_ffn_dim=2048, num_mel_bins=80, use_cache=False)
    return WhisperModel(cfg).get_encoder(), {"input_features": [80, 3000]}, "features"


@entry("wav2vec2_base", "audio encoder (1-D conv feature extractor + transformer)")
def _wav2vec2():
    from transformers import Wav2Vec2Config, Wav2Vec2Model
    return Wav2Vec2Model(Wav2Vec2Config()), {"input_values": [16000]}, "audio"


# Detection / segmentation backbones
@entry("resnet50_fpn", "detection backbone (FPN upsampling)")
def _fpn():
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone
    # Plain BatchNorm (not the frozen kind detection training uses) so its statistics can be calibrated.
    return resnet_fpn_backbone(backbone_name="resnet50", weights=None, trainable_layers=5,
                               norm_layer=torch.nn.BatchNorm2d), {"image": [3, 384, 384]}, "image"


@entry("deeplabv3_mobilenet_v3", "segmentation (depthwise backbone, bilinear upsampling)")
def _deeplab():
    import torchvision
    m = torchvision.models.segmentation.deeplabv3_mobilenet_v3_large(weights=None, weights_backbone=None,
                                                                    aux_loss=False)
    return m, {"image": [3, 384, 384]}, "image"


def make_inputs(dims, kind, batch, seed):
    """Inputs for one batch, the same for every caller given the seed."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for name, d in dims.items():
        if kind.startswith("tokens:"):
            out[name] = torch.randint(0, int(kind.split(":")[1]), [batch] + d, generator=g)
        else:
            out[name] = torch.randn([batch] + d, generator=g)
    return out


def flat_outputs(out):
    """A model's outputs as a tuple of tensors: transformers' dataclasses give their first field (hidden state or
    logits), dicts (torchvision's FPN and segmentation heads) every value in order."""
    if isinstance(out, torch.Tensor):
        return (out,)
    if hasattr(out, "to_tuple"):
        return (out.to_tuple()[0],)
    if isinstance(out, dict):
        return tuple(v for v in out.values() if isinstance(v, torch.Tensor))
    if isinstance(out, (list, tuple)):
        return tuple(t for o in out for t in flat_outputs(o))
    raise TypeError(f"cannot read outputs of type {type(out).__name__}")


class Wrapped(torch.nn.Module):
    """Fixed arity and plain tensor outputs, so the exporter's input and output names are ours."""

    def __init__(self, m, input_names):
        super().__init__()
        self.m = m
        self.input_names = list(input_names)

    def forward(self, *xs):
        if len(xs) == 1 and not hasattr(self.m, "config"):
            out = self.m(xs[0])
        else:
            out = self.m(**dict(zip(self.input_names, xs)))
        outs = flat_outputs(out)
        return outs[0] if len(outs) == 1 else outs


def calibrate_batch_norm(model, dims, kind):
    """BatchNorm running statistics of a freshly initialised model are mean 0 / var 1, which makes deep CNNs'
    activations grow layer by layer (f16 overflow) or vanish. A few train-mode passes with a cumulative average
    give statistics like a trained model's."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return 0
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative moving average over the passes
    model.train()
    with torch.no_grad():
        for i in range(3):
            model(*make_inputs(dims, kind, 8, 1000 + i).values())
    model.eval()
    return len(bns)


def randomize_zero_heads(model):
    """Some classifiers start with an all-zero head (torchvision's ViT): every logit would be 0 on both sides and
    hide any error before it."""
    n = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear) and not m.weight.any():
            torch.nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                torch.nn.init.normal_(m.bias, std=0.02)
            n += 1
    return n


def build(name):
    """(wrapped eval module, input dims, input kind, category): deterministic for a given name."""
    category, factory = ZOO[name]
    torch.manual_seed(0)
    model, dims, kind = factory()
    model = model.eval()
    randomize_zero_heads(model)
    calibrate_batch_norm(model, dims, kind)
    return Wrapped(model, dims.keys()).eval(), dims, kind, category
