"""lead_hsr.gan: StyleGAN2-ADA with the Hierarchical Semantic Regularizer (HSR), plain PyTorch.

Public API (what the workflow and the metrics call):
    training.train_gan(dataset_store, out_dir, options, work_dir, time_budget_s=None) -> Path   # out_dir/network.pt
    training.load_generator(path, device="cpu") -> Generator (G_ema, eval, no grad)
    training.DEFAULT_OPTIONS, training.resolve_options(options), training.exported_snapshot_name(kimg)
    arch_card.architecture_card(preset, extractors, hsr=None) -> {"G", "G_mapping", "G_synthesis", "D", "hsr_heads"}
    networks.PRESETS ("paper256", "demo"), networks.build_networks(preset, device)
    Generator: G(z, truncation_psi=1, noise_mode="random"|"const"|"none", return_features=False);
               G.mapping(z, c=None, truncation_psi=1) -> ws [N, num_ws, w_dim]; G.synthesis(ws, noise_mode,
               return_features=True) -> (img, {res: block features}, {res: running RGB image})
    checkpoints.import_official(pkl) / export_official(snap): NVlabs StyleGAN2-ADA / HSR pickles in, official
               state dicts out, without the official code (`python -m lead_hsr.gan.checkpoints import IN.pkl OUT.pt`)
Modules: layers (equalized lr, FIR resampling, modulated conv), networks, ada, loss, hsr, extractors, training,
arch_card, checkpoints.
"""
