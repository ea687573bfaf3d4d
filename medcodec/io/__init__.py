"""Files on disk: safe output writes (:mod:`.atomic`) and ordinary image files through
SimpleITK (:mod:`.images`)."""
