"""lead_hsr.lead: LEAD (thesis chapter 3) - self-supervised dense features and landmark evaluation.

Training (called by workflow_scripts/train_stage1.py, train_stage2.py):
- `stage1.train_stage1(store_path, out_weights, options, work_dir, time_budget_s=None, out_options=None)`:
  BYOL (LEAD) or MoCo (CL baseline, contrast-landmark's settings);
  `stage1.write_random_init(store_path, out_weights, options, ...)`.
- `stage2.train_stage2(store_path, stage1_weights, out_weights, options, work_dir, time_budget_s=None,
  out_options=None)`: objective lead | cl | cl_fpn | nmf.
Evaluation (regressor, matching) uses one interface for every extractor:
- `dense_model.load_dense_model(weights_path, device) -> DenseFeatureModel`,
- `dense_model.extract_features(model, uint8 N x H x W x 3 images, size, batch) -> N x C x size x size`.
Pieces: backbones, hypercolumns, augment, byol, moco, fpn, dense_objectives, nmf, common; regressor, matching
and tps belong to the landmark evaluation.
"""
