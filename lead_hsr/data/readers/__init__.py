"""Raw-layout readers, one module per dataset (landmark sets: celeba, mafl, aflw_m, aflw_r, w300; GAN sets: gan_*)."""
