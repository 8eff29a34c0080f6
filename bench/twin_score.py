"""Scoring one candidate the published code's way (docs/ALGORITHM.md §7), on the twin's network.

Per candidate: deep-copy the network with the split ("on"), deep-copy it again with the two new edges toggled off
("off"), deep-copy both for the thin pair, rebuild the four at their widths (`upsize`: every op, node BN and head
built anew, 3 for the NTK, 1 for the LRC on 1-channel crops); then, per repeat, Kaiming fan-out init of "on", its
parameters copied to "off", one forward per batch and network and one backward per sample into .grad, the weights'
gradients gathered, Θ = G·Gᵀ and its eigenvalues (`eigh`); then per repeat Kaiming fan-in init of the thin "on",
copied to the thin "off", ReLU hooks, forward passes over the crops, and the reference's pattern count from a
Hamming matrix (in f32 on the CPU, where the reference used f16 on its GPU).
"""
import copy

import numpy as np
import torch
import torch.nn as nn

from twin_net import Net


def init_model(net, mode):
    """The reference's kaiming_normal_fan{in,out}_init applied to every module."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight.data)
            nn.init.constant_(m.bias.data, 0.0)


def upsize(net, genotype, width, in_channels, disabled, cell, device):
    """The reference's `upsize`: the network rebuilt at `width` (every module new, so re-initialised)."""
    del net
    thin = Net(genotype, width, in_channels).to(device).train()
    thin.cells[cell].disabled = set(disabled)
    return thin


def ntk_condition_numbers(batches, networks):
    """ntk.py's get_ntk_n with train_mode=True: κ = λ_max/λ_min of each network's NTK, NaN → 1e5."""
    for network in networks:
        network.train()
    grads = [[] for _ in networks]
    for inputs in batches:
        for index, network in enumerate(networks):
            network.zero_grad()
            logit = network(inputs.clone())[-1]
            for n in range(len(inputs)):
                logit[n:n + 1].backward(torch.ones_like(logit[n:n + 1]), retain_graph=True)
                row = [w.grad.reshape(-1).detach() for name, w in network.named_parameters()
                       if ("weight" in name or name.endswith(".gate")) and w.grad is not None]
                grads[index].append(torch.cat(row, -1))
                network.zero_grad()
    conds = []
    for rows in grads:
        g = torch.stack(rows, 0)
        ntk = torch.einsum("nc,mc->nm", [g, g])
        eigenvalues, _ = torch.linalg.eigh(ntk, UPLO="U")
        conds.append(np.nan_to_num((eigenvalues[-1] / eigenvalues[0]).item(), copy=True, nan=100000.0))
    return conds


def region_counts(batches, networks, device):
    """lrc.py's Linear_Region_Collector: sign patterns of every ReLU, counted through a Hamming matrix."""
    features = []

    def hook(module, inputs, output):
        if isinstance(inputs, tuple) and len(inputs[0].size()) == 4:
            features.append(output.detach())

    handles = [m.register_forward_hook(hook) for net in networks for m in net.modules() if isinstance(m, nn.ReLU)]
    samples = sum(len(b) for b in batches)
    activations = [None] * len(networks)
    ptr = 0
    with torch.no_grad():
        for inputs in batches:
            for index, network in enumerate(networks):
                features.clear()
                network(inputs)
                if not features:
                    continue
                data = torch.cat([f.reshape(inputs.size(0), -1) for f in features], 1)
                if activations[index] is None:
                    activations[index] = torch.zeros(samples, data.shape[1], device=device)
                activations[index][ptr:ptr + len(inputs)] = torch.sign(data)
            ptr += len(inputs)
        counts = []
        kind = torch.half if device.type == "cuda" else torch.float32
        for act in activations:
            if act is None:
                counts.append(0.0)
                continue
            res = torch.matmul(act.to(kind), (1 - act).T.to(kind))
            res += res.T.clone()
            res = 1 - torch.sign(res)
            counts.append((1.0 / res.sum(1).float()).sum().item())
    for handle in handles:
        handle.remove()
    return counts


def prepare_inputs(genotype, metrics, device, memory_format=torch.contiguous_format, seed=3):
    """Per repeat: the NTK batches and the LRC crops (one random channel, random position), drawn before timing."""
    gen = torch.Generator().manual_seed(seed)
    shape = genotype["input"]
    pool = torch.randn(1000, shape["channels"], shape["height"], shape["width"], generator=gen)
    side = metrics["lrc_crop"]
    prepared = []
    for _ in range(metrics["repeats"]):
        order = torch.randperm(len(pool), generator=gen)
        size = metrics["ntk_batch_size"]
        ntk = [pool[order[b * size:(b + 1) * size]].to(device).contiguous(memory_format=memory_format)
               for b in range(metrics["ntk_batches"])]
        lrc = []
        for _ in range(metrics["lrc_batches"]):
            n = metrics["lrc_batch_size"]
            image = torch.randint(0, len(pool), (n,), generator=gen)
            channel = torch.randint(0, shape["channels"], (n,), generator=gen)
            top = torch.randint(0, shape["height"] - side + 1, (n,), generator=gen)
            left = torch.randint(0, shape["width"] - side + 1, (n,), generator=gen)
            crops = [pool[i, c:c + 1, t:t + side, l:l + side]
                     for i, c, t, l in zip(image.tolist(), channel.tolist(), top.tolist(), left.tolist())]
            lrc.append(torch.stack(crops).to(device).contiguous(memory_format=memory_format))
        prepared.append((ntk, lrc))
    return prepared


def score_candidate(full_on, genotype, cell, new_edges, metrics, prepared, device,
                    memory_format=torch.contiguous_format):
    """One candidate, every repeat of both metrics; returns (mean r_lrc, mean r_ntk) as compare_models does."""
    on = copy.deepcopy(full_on)
    off = copy.deepcopy(on)
    off.cells[cell].disabled = set(new_edges)
    off_thin, on_thin = copy.deepcopy(off), copy.deepcopy(on)
    on = upsize(on, genotype, metrics["ntk_width"], None, (), cell, device)
    off = upsize(off, genotype, metrics["ntk_width"], None, new_edges, cell, device)
    on_thin = upsize(on_thin, genotype, metrics["lrc_width"], 1, (), cell, device)
    off_thin = upsize(off_thin, genotype, metrics["lrc_width"], 1, new_edges, cell, device)
    for net in (on, off, on_thin, off_thin):
        net.to(memory_format=memory_format)
    ntks, lrcs = [], []
    for ntk_batches, _ in prepared:
        init_model(on, "fan_out")
        for source, target in zip(on.parameters(), off.parameters()):
            target.data.copy_(source.data)
        kappa_on, kappa_off = ntk_condition_numbers(ntk_batches, [on, off])
        ntks.append((kappa_on - kappa_off) / kappa_off)
    on.zero_grad()
    off.zero_grad()
    on_thin.train()
    off_thin.train()
    for _, crops in prepared:
        with torch.no_grad():
            init_model(on_thin, "fan_in")
            for source, target in zip(on_thin.parameters(), off_thin.parameters()):
                target.data.copy_(source.data)
            lrc_on, lrc_off = region_counts(crops, [on_thin, off_thin], device)
            lrcs.append((lrc_on - lrc_off) / float(lrc_off) if lrc_off else float("nan"))
    return float(np.mean(lrcs)), float(np.mean(ntks))


def thin_parameter_counts(genotype, metrics):
    """Parameters of the NTK network and of the LRC network (1-channel crops), as our manifest records them."""
    count = lambda net: sum(p.numel() for p in net.parameters())
    return count(Net(genotype, metrics["ntk_width"])), count(Net(genotype, metrics["lrc_width"], 1))
