"""Dataset readers: Aperio XML polygons, CRCHistoPhenotypes .mat points, and the real folders."""

import numpy as np
import pytest
import scipy.io
import tifffile

from immunodig.nuclei.datasets import DatasetError, aperio_xml_to_instances, read_crchistophenotypes, read_monuseg

XML = """<Annotations MicronsPerPixel="0.2500">
 <Annotation><Regions>
  <Region Id="1"><Vertices><Vertex X="0" Y="0"/><Vertex X="4" Y="0"/><Vertex X="4" Y="4"/>
   <Vertex X="0" Y="4"/></Vertices></Region>
  <Region Id="2"><Vertices><Vertex X="3" Y="3"/><Vertex X="11" Y="3"/><Vertex X="11" Y="11"/>
   <Vertex X="3" Y="11"/></Vertices></Region>
 </Regions></Annotation>
</Annotations>"""


def write_monuseg(folder, n=1, size=10):
    for i in range(n):
        tifffile.imwrite(folder / f"img{i}.tif", np.full((size, size, 3), 200, np.uint8))
        (folder / f"img{i}.xml").write_text(XML)


def test_xml_rasterised_with_clipping_and_last_drawn_wins(tmp_path):
    (tmp_path / "a.xml").write_text(XML)
    inst, mpp = aperio_xml_to_instances(tmp_path / "a.xml", (10, 10))
    assert mpp == 0.25
    assert inst[0, 0] == 1 and inst[2, 2] == 1
    assert inst[3, 3] == 2 and inst[4, 4] == 2  # overlap -> region drawn last
    assert inst[9, 9] == 2  # vertices at 11 clipped to the 10x10 image
    assert set(np.unique(inst)) == {0, 1, 2}


def test_read_monuseg_folder(tmp_path):
    write_monuseg(tmp_path, 2)
    images = read_monuseg(tmp_path)
    assert [im.image_id for im in images] == ["img0", "img1"]
    assert images[0].rgb.shape == (10, 10, 3) and images[0].instances.max() == 2


def test_empty_folder_raises(tmp_path):
    with pytest.raises(DatasetError, match="no .tif"):
        read_monuseg(tmp_path)
    with pytest.raises(DatasetError, match="imgN"):
        read_crchistophenotypes(tmp_path)


def write_crc(folder, name="img3"):
    from skimage.io import imsave

    d = folder / name
    d.mkdir()
    imsave(d / f"{name}.bmp", np.full((20, 20, 3), 180, np.uint8), check_contrast=False)
    det = np.array([[2.0, 3.0], [10.0, 11.0], [15.0, 5.0]])  # MATLAB 1-based (x, y)
    scipy.io.savemat(d / f"{name}_detection.mat", {"detection": det})
    scipy.io.savemat(d / f"{name}_inflammatory.mat", {"detection": det[:1]})
    scipy.io.savemat(d / f"{name}_epithelial.mat", {"detection": det[1:2]})
    for c in ("fibroblast", "others"):
        scipy.io.savemat(d / f"{name}_{c}.mat", {"detection": np.zeros((0, 2))})


def test_read_crc_points_zero_based_and_unlabelled(tmp_path):
    write_crc(tmp_path)
    (im,) = read_crchistophenotypes(tmp_path)
    np.testing.assert_allclose(im.points_xy[0], [1.0, 2.0])
    assert im.labels.tolist() == [1, 0, -1]  # inflammatory, epithelial, unclassified
    assert im.mpp == 0.55


def test_real_monuseg(monuseg_dir):
    images = read_monuseg(monuseg_dir)
    counts = {im.image_id: int(im.instances.max()) for im in images}
    # index.csv counts regions; a handful may be degenerate, never more
    assert 355 <= counts["TCGA-NH-A8F7-01A-01-TS1"] <= 363
    assert next(im for im in images if im.image_id.startswith("TCGA-69")).mpp == pytest.approx(0.252)


def test_real_crc_counts(crc_dir):
    images = read_crchistophenotypes(crc_dir)
    assert len(images) == 48
    labels = np.concatenate([im.labels for im in images])
    # every class point keeps its label; the few (< 40) class points off any detection point are added
    assert (labels == 1).sum() == 3407 and (labels == 0).sum() == 3831
    assert 13048 <= len(labels) < 13048 + 40 and (labels == -1).sum() <= 13048 - 11290 + 40
