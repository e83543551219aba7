"""One row per architecture. Add a model: write its file, then add its row here."""

from edgecnn.models._registry import ModelInfo, register

register(ModelInfo(
    name="lenet5", entrypoint="edgecnn.models.lenet:LeNet5",
    default_input_shape=(32, 32, 1), min_input_size=16, preprocess="unit",
    aliases=("lenet", "lenet_5"), extra_args=("original",),
    paper="LeCun et al., Gradient-based learning applied to document recognition, 1998",
))
register(ModelInfo(
    name="alexnet", entrypoint="edgecnn.models.alexnet:AlexNet",
    default_input_shape=(224, 224, 3), min_input_size=63, preprocess="caffe",
    extra_args=("lrn", "dropout"),
    paper="Krizhevsky et al., ImageNet classification with deep CNNs, 2012; "
    "single tower as in Krizhevsky, One weird trick, 2014",
))
for _name, _twin in (("vgg16", "VGG16"), ("vgg19", "VGG19")):
    register(ModelInfo(
        name=_name, entrypoint=f"edgecnn.models.vgg:{_twin}",
        default_input_shape=(224, 224, 3), min_input_size=32, preprocess="caffe",
        keras_twin=_twin, imagenet_weights=True,
        paper="Simonyan & Zisserman, Very deep convolutional networks, 2014",
    ))
for _depth in (18, 34, 50, 101, 152):
    _twin = f"ResNet{_depth}" if _depth >= 50 else None
    register(ModelInfo(
        name=f"resnet{_depth}", entrypoint=f"edgecnn.models.resnet:ResNet{_depth}",
        default_input_shape=(224, 224, 3), min_input_size=32, preprocess="caffe",
        keras_twin=_twin, imagenet_weights=_twin is not None,
        paper="He et al., Deep residual learning for image recognition, 2015",
    ))
register(ModelInfo(
    name="googlenet", entrypoint="edgecnn.models.googlenet:GoogLeNet",
    default_input_shape=(224, 224, 3), min_input_size=32, preprocess="tf",
    aliases=("inception_v1",), extra_args=("aux_logits", "batch_norm"),
    paper="Szegedy et al., Going deeper with convolutions, 2014",
))
register(ModelInfo(
    name="mobilenet_v1", entrypoint="edgecnn.models.mobilenet_v1:MobileNet",
    default_input_shape=(224, 224, 3), min_input_size=32, preprocess="tf",
    aliases=("mobilenet", "mobilenetv1"), keras_twin="MobileNet", imagenet_weights=True,
    extra_args=("alpha", "depth_multiplier", "dropout"),
    paper="Howard et al., MobileNets, 2017",
))
register(ModelInfo(
    name="mobilenet_v2", entrypoint="edgecnn.models.mobilenet_v2:MobileNetV2",
    default_input_shape=(224, 224, 3), min_input_size=32, preprocess="tf",
    aliases=("mobilenetv2",), keras_twin="MobileNetV2", imagenet_weights=True,
    extra_args=("alpha",),
    paper="Sandler et al., MobileNetV2: inverted residuals and linear bottlenecks, 2018",
))
