// Data sets on small on-disk copies of each layout, augmentation and multi-worker loading.

#include <doctest/doctest.h>
#include <torch/torch.h>

#include <mtsam/data/cityscapes.hpp>
#include <mtsam/data/image_io.hpp>
#include <mtsam/data/npy.hpp>
#include <mtsam/data/nyuv2.hpp>
#include <mtsam/data/pascal_context.hpp>

#include "data/on_disk.hpp"

namespace md = mtsam::data;
using data_test::TempDir;

namespace {

constexpr int64_t kH = 6;
constexpr int64_t kW = 8;

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// Writes an NYUv2-layout split of `n` samples; labels hold -1 and an out-of-range 13.
void write_nyu_split(const std::filesystem::path& dir, int64_t n) {
  for (const char* f : {"image", "label", "depth", "normal"}) {
    std::filesystem::create_directories(dir / f);
  }
  for (int64_t i = 0; i < n; ++i) {
    const std::string name = std::to_string(i) + ".npy";
    const auto image = torch::rand({kH, kW, 3}, torch::kFloat64);
    auto label = torch::arange(kH * kW).reshape({kH, kW}).remainder(13).to(torch::kFloat32);
    label[0][0] = -1;
    label[0][1] = 13;
    auto depth = torch::rand({kH, kW, 1}) + 0.5;
    depth[1][1][0] = 0;
    auto normal = torch::nn::functional::normalize(
        torch::randn({kH, kW, 3}), torch::nn::functional::NormalizeFuncOptions().dim(2));
    normal[2][2] = torch::zeros({3});
    md::write_npy(dir / "image" / name, image);
    md::write_npy(dir / "label" / name, i == 1 ? label.to(torch::kInt16) : label);
    md::write_npy(dir / "depth" / name, depth);
    md::write_npy(dir / "normal" / name, normal);
  }
}

}  // namespace

TEST_CASE("an NYUv2 folder loads the image and three targets with NYUv2's conventions") {
  TempDir dir;
  write_nyu_split(dir.path() / "train", 3);
  write_nyu_split(dir.path() / "val", 2);
  md::NyuV2Dataset train(md::NyuV2Options(dir.path()));
  md::NyuV2Dataset val(md::NyuV2Options(dir.path()).split("test"));
  CHECK(train.size().value() == 3);
  CHECK(val.size().value() == 2);

  for (size_t i = 0; i < 3; ++i) {
    const auto s = train.get(i);
    const auto raw_image = md::read_npy(dir.path() / "train/image" / (std::to_string(i) + ".npy"));
    CHECK((s.image.scalar_type() == torch::kFloat32));
    CHECK(s.image.allclose(raw_image.permute({2, 0, 1}).to(torch::kFloat32)));
    const auto& label = s.target(md::kSemseg);
    CHECK((label.scalar_type() == torch::kInt64));
    CHECK(label.sizes() == std::vector<int64_t>{kH, kW});
    CHECK(label[0][0].item<int64_t>() == -1);
    CHECK(label[0][1].item<int64_t>() == -1);  // 13 is outside the 13 classes
    CHECK(label[0][2].item<int64_t>() == 2);
    CHECK(s.target(md::kDepth).sizes() == std::vector<int64_t>{1, kH, kW});
    CHECK(s.target(md::kDepth)[0][1][1].item<float>() == 0.0f);
    CHECK(s.target(md::kNormals).sizes() == std::vector<int64_t>{3, kH, kW});
    CHECK(s.target(md::kNormals).select(1, 2).select(1, 2).abs().sum().item<float>() == 0.0f);
  }
  CHECK_THROWS_AS(train.get(3), c10::Error);
}

TEST_CASE("uint8 normals read as the picture encoding, three zero bytes meaning invalid") {
  TempDir dir;
  write_nyu_split(dir.path() / "train", 1);
  auto bytes = torch::full({kH, kW, 3}, 255, torch::kUInt8);
  bytes.select(2, 0).fill_(0);    // x = -1
  bytes.select(2, 1).fill_(128);  // y = 2 * 128 / 255 - 1
  bytes[1][1] = torch::zeros({3}, torch::kUInt8);
  md::write_npy(dir.path() / "train/normal/0.npy", bytes);
  const auto normals = md::NyuV2Dataset(md::NyuV2Options(dir.path())).get(0).target(md::kNormals);
  CHECK(normals[0][0][0].item<float>() == doctest::Approx(-1.0));
  CHECK(normals[1][0][0].item<float>() == doctest::Approx(2.0 * 128.0 / 255.0 - 1.0));
  CHECK(normals[2][0][0].item<float>() == doctest::Approx(1.0));
  CHECK(normals.select(1, 1).select(1, 1).abs().sum().item<float>() == 0.0f);
}

TEST_CASE("a missing NYUv2 folder or file is an error naming the path and the layout") {
  TempDir dir;
  auto message = error_of([&] { md::NyuV2Dataset(md::NyuV2Options(dir.path())); });
  CHECK(message.find((dir.path() / "train").string()) != std::string::npos);
  CHECK(message.find("image,label,depth,normal") != std::string::npos);

  write_nyu_split(dir.path() / "train", 3);
  std::filesystem::remove(dir.path() / "train/depth/1.npy");
  message = error_of([&] { md::NyuV2Dataset(md::NyuV2Options(dir.path())); });
  CHECK(message.find((dir.path() / "train/depth/1.npy").string()) != std::string::npos);

  write_nyu_split(dir.path() / "train", 3);
  std::filesystem::remove(dir.path() / "train/image/1.npy");
  message = error_of([&] { md::NyuV2Dataset(md::NyuV2Options(dir.path())); });
  CHECK(message.find((dir.path() / "train/image/1.npy").string()) != std::string::npos);

  CHECK(error_of([&] {
          md::NyuV2Dataset(md::NyuV2Options(dir.path()).split("dev"));
        }).find("split") != std::string::npos);
}

TEST_CASE("a corrupt or mis-shaped NYUv2 file fails when its sample is read") {
  TempDir dir;
  write_nyu_split(dir.path() / "train", 2);
  data_test::write_bytes(dir.path() / "train/label/0.npy", "garbage");
  md::write_npy(dir.path() / "train/depth/1.npy", torch::ones({kH + 1, kW}));
  md::NyuV2Dataset ds(md::NyuV2Options(dir.path()));
  CHECK(error_of([&] { ds.get(0); }).find("train/label/0.npy") != std::string::npos);
  CHECK(error_of([&] { ds.get(1); }).find("differs from the image") != std::string::npos);
}

TEST_CASE("CityScapes picks label_7 or label_19 from the class count") {
  TempDir dir;
  const auto split = dir.path() / "val";
  for (const char* f : {"image", "label_7", "label_19", "depth"}) {
    std::filesystem::create_directories(split / f);
  }
  md::write_npy(split / "image/0.npy", torch::rand({kH, kW, 3}));
  md::write_npy(split / "label_7/0.npy", torch::full({kH, kW}, 6.0));
  md::write_npy(split / "label_19/0.npy", torch::full({kH, kW}, 18.0));
  md::write_npy(split / "depth/0.npy", torch::full({kH, kW, 1}, 0.25));
  md::CityScapesDataset seven(md::CityScapesOptions(dir.path()).split("val"));
  md::CityScapesDataset nineteen(
      md::CityScapesOptions(dir.path()).split("val").tasks(md::cityscapes_tasks(19)));
  CHECK(seven.get(0).target(md::kSemseg).eq(6).all().item<bool>());
  CHECK(nineteen.get(0).target(md::kSemseg).eq(18).all().item<bool>());
  CHECK(seven.get(0).target(md::kDepth).eq(0.25).all().item<bool>());
  CHECK(error_of([&] {
          md::CityScapesDataset(md::CityScapesOptions(dir.path()));
        }).find((dir.path() / "train").string()) != std::string::npos);
}

namespace {

// Writes a PASCAL_MT folder with two train images: one with person parts, one without.
void write_pascal(const std::filesystem::path& root) {
  data_test::write_bytes(root / "ImageSets/Context/train.txt", "2008_000001\n2008_000002\r\n\n");
  for (const std::string id : {"2008_000001", "2008_000002"}) {
    std::filesystem::create_directories(root / "JPEGImages");
    md::write_jpeg(root / "JPEGImages" / (id + ".jpg"),
                   torch::full({kH, kW, 3}, 120, torch::kUInt8), 100);
    auto sem = torch::full({kH, kW}, 3, torch::kUInt8);
    sem[0][0] = 255;
    sem[0][1] = 30;  // beyond the 21 classes
    std::filesystem::create_directories(root / "semseg/pascal-context");
    md::write_png(root / "semseg/pascal-context" / (id + ".png"), sem);
    auto sal = torch::zeros({kH, kW}, torch::kUInt8);
    sal.slice(0, 0, 3).fill_(200);
    std::filesystem::create_directories(root / "sal_distill");
    md::write_png(root / "sal_distill" / (id + ".png"), sal);
    // Normals (0, 0, 1) everywhere, valid only where the Context id is 3 (valid) not 1.
    auto normals = torch::full({kH, kW, 3}, 128, torch::kUInt8);
    normals.select(2, 2).fill_(255);
    std::filesystem::create_directories(root / "normals_distill");
    md::write_png(root / "normals_distill" / (id + ".png"), normals);
    auto ids = torch::full({kH, kW}, 3.0, torch::kFloat64);
    ids.slice(1, 0, 2).fill_(1.0);
    data_test::write_matrix_mat(root / "pascal-context/trainval" / (id + ".mat"), "LabelMap", ids);
    auto head = torch::zeros({kH, kW}, torch::kUInt8);
    head.slice(0, 0, 2).slice(1, 0, 2).fill_(1);
    std::vector<data_test::PartObject> objects;
    if (id == "2008_000001")
      objects.push_back({"person", 15, head, {{"hair", head}}});
    data_test::write_parts_mat(root / "human_parts" / (id + ".mat"), objects);
  }
}

}  // namespace

TEST_CASE("PASCAL-Context reads every task with 255 as its ignore value") {
  TempDir dir;
  write_pascal(dir.path());
  md::PascalContextDataset ds(md::PascalContextOptions(dir.path()).height(0).width(0));
  REQUIRE(ds.size().value() == 2);
  CHECK(ds.ids()[1] == "2008_000002");

  const auto s = ds.get(0);
  CHECK(s.image.sizes() == std::vector<int64_t>{3, kH, kW});
  CHECK(std::abs(s.image.mean().item<float>() - 120.0f / 255.0f) < 0.02f);
  const auto& sem = s.target(md::kSemseg);
  CHECK(sem[0][0].item<int64_t>() == 255);
  CHECK(sem[0][1].item<int64_t>() == 255);
  CHECK(sem[3][3].item<int64_t>() == 3);
  const auto& parts = s.target(md::kParts);
  CHECK(parts[0][0].item<int64_t>() == 1);
  CHECK(parts[5][5].item<int64_t>() == 0);
  CHECK(ds.get(1).target(md::kParts).eq(255).all().item<bool>());
  const auto& sal = s.target(md::kSaliency);
  CHECK(sal.sizes() == std::vector<int64_t>{1, kH, kW});
  CHECK(sal.sum().item<float>() == 3.0f * kW);
  const auto& normals = s.target(md::kNormals);
  CHECK(normals.slice(2, 0, 2).abs().sum().item<float>() == 0.0f);
  const auto valid = normals.slice(2, 2, kW);
  CHECK(valid.norm(2, 0).sub(1).abs().max().item<float>() < 1e-5f);
  CHECK(valid[2].min().item<float>() > 0.99f);
}

TEST_CASE("PASCAL-Context resizes to a fixed size and stacks into batches") {
  TempDir dir;
  write_pascal(dir.path());
  md::PascalContextDataset ds(
      md::PascalContextOptions(dir.path()).height(4).width(4).augment(true));
  const auto batch = md::StackSamples().apply_batch({ds.get(0), ds.get(1)});
  CHECK(batch.image.sizes() == std::vector<int64_t>{2, 3, 4, 4});
  CHECK(batch.target(md::kParts).sizes() == std::vector<int64_t>{2, 4, 4});
  CHECK(batch.target(md::kNormals).sizes() == std::vector<int64_t>{2, 3, 4, 4});
  const auto& sem = batch.target(md::kSemseg);
  CHECK(sem.eq(3).logical_or(sem.eq(255)).all().item<bool>());
}

TEST_CASE("a missing PASCAL-Context file names the path and the image id") {
  TempDir dir;
  write_pascal(dir.path());
  std::filesystem::remove(dir.path() / "sal_distill/2008_000002.png");
  const auto message =
      error_of([&] { md::PascalContextDataset(md::PascalContextOptions(dir.path())); });
  CHECK(message.find("sal_distill/2008_000002.png") != std::string::npos);
  CHECK(message.find("saliency PNG") != std::string::npos);
  const auto no_list = error_of(
      [&] { md::PascalContextDataset(md::PascalContextOptions(dir.path()).split("val")); });
  CHECK(no_list.find("ImageSets/Context/val.txt") != std::string::npos);
}

namespace {

md::TaskSample ramp_sample() {
  md::TaskSample s;
  s.image = torch::arange(3 * kH * kW, torch::kFloat32).reshape({3, kH, kW}) / (3 * kH * kW);
  s.targets[md::kSemseg] = torch::arange(kH * kW).reshape({kH, kW}).remainder(13);
  s.targets[md::kDepth] = torch::arange(1, kH * kW + 1, torch::kFloat32).reshape({1, kH, kW});
  auto n = torch::zeros({3, kH, kW});
  n[0].fill_(0.6f);
  n[2].fill_(0.8f);
  s.targets[md::kNormals] = n;
  return s;
}

}  // namespace

TEST_CASE("scale-crop divides depth by the scale and the flip negates normal x") {
  const auto s = ramp_sample();
  const auto tasks = md::nyuv2_tasks();
  md::SampleRng rng(1, 0, 0);
  const auto a =
      md::scale_crop_flip(s, tasks, md::AugmentOptions().scales({1.5}).flip_probability(1.0), rng);
  CHECK(a.image.sizes() == s.image.sizes());
  // Nearest resizing keeps depth values, each divided by 1.5.
  const auto depth_values = a.target(md::kDepth).flatten() * 1.5f;
  CHECK(depth_values.sub(depth_values.round()).abs().max().item<float>() < 1e-4f);
  CHECK(a.target(md::kNormals)[0].add(0.6f).abs().max().item<float>() < 1e-6f);
  CHECK((a.target(md::kSemseg).scalar_type() == torch::kInt64));

  md::SampleRng rng2(1, 0, 0);
  const auto f =
      md::scale_crop_flip(s, tasks, md::AugmentOptions().scales({1.0}).flip_probability(1.0), rng2);
  CHECK(f.image.equal(s.image.flip({-1})));
  CHECK(f.target(md::kSemseg).equal(s.target(md::kSemseg).flip({-1})));
  CHECK(f.target(md::kDepth).equal(s.target(md::kDepth).flip({-1})));
}

TEST_CASE("augmentation is reproducible per seed, epoch and index") {
  TempDir dir;
  write_nyu_split(dir.path() / "train", 4);
  const auto options = md::NyuV2Options(dir.path()).augment(true);
  md::NyuV2Dataset a(options);
  md::NyuV2Dataset b(options);
  md::NyuV2Dataset other_seed(
      md::NyuV2Options(dir.path()).augment(true).augmentation(md::AugmentOptions().seed(7)));
  bool seed_matters = false;
  bool epoch_matters = false;
  std::vector<torch::Tensor> first;
  for (size_t i = 0; i < 4; ++i) {
    const auto x = a.get(i);
    CHECK(x.image.equal(b.get(i).image));
    CHECK(x.target(md::kDepth).equal(b.get(i).target(md::kDepth)));
    seed_matters = seed_matters || !x.image.equal(other_seed.get(i).image);
    first.push_back(x.image);
  }
  a.epoch().set(1);
  for (size_t i = 0; i < 4; ++i) {
    epoch_matters = epoch_matters || !a.get(i).image.equal(first[i]);
  }
  CHECK(seed_matters);
  CHECK(epoch_matters);
}

TEST_CASE("the data loader with two workers yields what direct reads give") {
  TempDir dir;
  write_nyu_split(dir.path() / "train", 5);
  md::NyuV2Dataset ds(md::NyuV2Options(dir.path()).augment(true));
  auto epoch = ds.epoch();
  epoch.set(3);
  auto loader = torch::data::make_data_loader<torch::data::samplers::SequentialSampler>(
      ds.map(md::StackSamples()), torch::data::DataLoaderOptions().batch_size(2).workers(2));
  size_t seen = 0;
  for (const auto& batch : *loader) {
    for (int64_t b = 0; b < batch.image.size(0); ++b) {
      const auto direct = ds.get(seen);
      CHECK(batch.image[b].equal(direct.image));
      CHECK(batch.target(md::kSemseg)[b].equal(direct.target(md::kSemseg)));
      CHECK(batch.target(md::kNormals)[b].equal(direct.target(md::kNormals)));
      ++seen;
    }
  }
  CHECK(seen == 5);
}
