#!/usr/bin/env python3
"""Writes a full-size BEATs checkpoint with random weights, laid out exactly as the official ones.

Same container (`torch.save({'cfg': dict, 'model': state_dict[, 'label_dict']})`), same state-dict
key names, shapes and dtypes as BEATs_iter3+ (pre-trained), its AudioSet fine-tuned variant and the
acoustic tokenizer: ~90 M parameters, ~361 MB as float32. Used for speed and memory measurements
(reader, converter, runtime); the weights are random, so its outputs mean nothing.

Needs torch (tooling only; tests never run this). Example:
    python3 tools/make_synthetic_checkpoint.py --kind finetuned -o /tmp/beats-full/BEATs_ft.pt
"""
import argparse
import csv
import os
from collections import OrderedDict

import torch

FULL_CONFIG = dict(
    input_patch_size=16, embed_dim=512, conv_bias=False, encoder_layers=12, encoder_embed_dim=768,
    encoder_ffn_embed_dim=3072, encoder_attention_heads=12, activation_fn="gelu",
    layer_wise_gradient_decay_ratio=0.6, layer_norm_first=False, deep_norm=True, dropout=0.0,
    attention_dropout=0.0, activation_dropout=0.0, encoder_layerdrop=0.05, dropout_input=0.0,
    conv_pos=128, conv_pos_groups=16, relative_position_embedding=True, num_buckets=320,
    max_distance=800, gru_rel_pos=True,
)


def linear(state, name, out_features, in_features, generator, bias=True):
    bound = in_features ** -0.5
    state[f"{name}.weight"] = (torch.rand(out_features, in_features, generator=generator) * 2 - 1) * bound
    if bias:
        state[f"{name}.bias"] = torch.randn(out_features, generator=generator) * 0.02


def layer_norm(state, name, size, generator):
    state[f"{name}.weight"] = 1 + 0.1 * torch.randn(size, generator=generator)
    state[f"{name}.bias"] = 0.05 * torch.randn(size, generator=generator)


def build_state_dict(cfg, kind, generator):
    """Key order follows the official modules' registration order."""
    state = OrderedDict()
    dim, embed, heads = cfg["encoder_embed_dim"], cfg["embed_dim"], cfg["encoder_attention_heads"]
    patch = cfg["input_patch_size"]
    linear(state, "post_extract_proj", dim, embed, generator)
    state["patch_embedding.weight"] = torch.randn(embed, 1, patch, patch, generator=generator) * (patch * patch) ** -0.5
    if cfg["conv_bias"]:
        state["patch_embedding.bias"] = torch.randn(embed, generator=generator) * 0.02
    kernel, groups = cfg["conv_pos"], cfg["conv_pos_groups"]
    state["encoder.pos_conv.0.bias"] = torch.randn(dim, generator=generator) * 0.02
    weight_v = torch.randn(dim, dim // groups, kernel, generator=generator) * (4.0 / (kernel * dim)) ** 0.5
    norms = weight_v.norm(dim=(0, 1), keepdim=True)
    state["encoder.pos_conv.0.weight_g"] = norms * (1 + 0.1 * torch.randn(norms.shape, generator=generator))
    state["encoder.pos_conv.0.weight_v"] = weight_v
    for index in range(cfg["encoder_layers"]):
        prefix = f"encoder.layers.{index}"
        if cfg["gru_rel_pos"]:
            state[f"{prefix}.self_attn.grep_a"] = torch.ones(1, heads, 1, 1) + 0.1 * torch.randn(1, heads, 1, 1, generator=generator)
        # The official encoder registers layer 0's relative bias before its projections (it is
        # created first and shared), the others' after grep_linear.
        relative_bias = f"{prefix}.self_attn.relative_attention_bias.weight"
        if cfg["relative_position_embedding"] and index == 0:
            state[relative_bias] = torch.randn(cfg["num_buckets"], heads, generator=generator)
        for projection in ("k_proj", "v_proj", "q_proj", "out_proj"):
            linear(state, f"{prefix}.self_attn.{projection}", dim, dim, generator)
        if cfg["gru_rel_pos"]:
            linear(state, f"{prefix}.self_attn.grep_linear", 8, dim // heads, generator)
        if cfg["relative_position_embedding"] and index > 0:
            # One parameter shared by every layer, saved under each layer's name (as official
            # checkpoints hold it): the official code would otherwise use the last copy.
            state[relative_bias] = state["encoder.layers.0.self_attn.relative_attention_bias.weight"]
        layer_norm(state, f"{prefix}.self_attn_layer_norm", dim, generator)
        linear(state, f"{prefix}.fc1", cfg["encoder_ffn_embed_dim"], dim, generator)
        linear(state, f"{prefix}.fc2", dim, cfg["encoder_ffn_embed_dim"], generator)
        layer_norm(state, f"{prefix}.final_layer_norm", dim, generator)
    layer_norm(state, "encoder.layer_norm", dim, generator)
    layer_norm(state, "layer_norm", embed, generator)
    if kind == "finetuned":
        linear(state, "predictor", cfg["predictor_class"], dim, generator)
    if kind == "tokenizer":
        codes, code_dim = cfg["quant_n"], cfg["quant_dim"]
        codebook = torch.nn.functional.normalize(torch.randn(codes, code_dim, generator=generator), dim=-1)
        state["quantize.cluster_size"] = torch.ones(codes)
        state["quantize.embedding.weight"] = codebook
        state["quantize.embedding.cluster_size"] = torch.ones(codes)
        state["quantize.embedding.embed_avg"] = codebook.clone()
        state["quantize.embedding.initted"] = torch.tensor([1.0])
        linear(state, "quantize_layer.0", dim, dim, generator)
        linear(state, "quantize_layer.2", code_dim, dim, generator)
    return state


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["pretrained", "finetuned", "tokenizer"], default="pretrained")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--labels", default=os.path.join(os.path.dirname(__file__), "..", "Fixtures", "class_labels_indices.csv"),
                        help="AudioSet class table for the fine-tuned label_dict")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()

    cfg = dict(FULL_CONFIG)
    if args.kind == "finetuned":
        cfg.update(finetuned_model=True, predictor_class=527, predictor_dropout=0.0)
    elif args.kind == "pretrained":
        cfg.update(finetuned_model=False)
    else:
        cfg.update(quant_n=1024, quant_dim=256)
    generator = torch.Generator().manual_seed(args.seed)
    checkpoint = {"cfg": cfg, "model": build_state_dict(cfg, args.kind, generator)}
    if args.kind == "finetuned":
        with open(args.labels, newline="") as table:
            checkpoint["label_dict"] = {int(row["index"]): row["mid"] for row in csv.DictReader(table)}
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    torch.save(checkpoint, args.output)
    count = sum(tensor.numel() for tensor in checkpoint["model"].values())
    print(f"{args.output}: {args.kind}, {len(checkpoint['model'])} tensors, {count / 1e6:.1f} M parameters, "
          f"{os.path.getsize(args.output) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
