"""Named metric sets used by reports."""

#: The eight metrics most medical-fusion papers report (CDDFuse / DDFM / EMMA tables), in table order.
HEADLINE = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")

#: The 12 metrics of CDDFuse's ``utils/Evaluator.py`` (the code CDDFuse, EMMA and DDFM score with).
EVALUATOR_PY = ("EN", "SD", "SF", "AG", "MI", "MSE", "CC", "PSNR", "SCD", "VIF", "Qabf", "SSIM")
