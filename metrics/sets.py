"""Named metric sets used by reports."""

#: The eight metrics most medical-fusion papers report (CDDFuse / DDFM / EMMA tables), in table order.
HEADLINE = ("EN", "SD", "SF", "MI", "SCD", "VIF", "Qabf", "SSIM")
