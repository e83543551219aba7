"""One row per architecture. Add a model: write its file, then add its row here.

The row is the one place for a model's facts: its default and smallest input, the
preprocessing it expects, whether its classifier needs a fixed input size, the
auxiliary classifiers it trains with, and its keras.applications twin. The model
file reads its own row (`model_row(name)` in `_common`); pipelines and tests ask
the registry, never a model's name.
"""

from edgecnn.models._registry import ModelInfo, register

register(
    ModelInfo(
        name="lenet5",
        entrypoint="edgecnn.models.lenet:LeNet5",
        # conv 5x5 valid, pool 2, conv 5x5 valid, pool 2: 16 -> 12 -> 6 -> 2 -> 1.
        # At 15 the second pool would see a 1x1 map and output nothing.
        default_input_shape=(32, 32, 1),
        min_input_size=16,
        preprocess="unit",
        aliases=("lenet", "lenet_5"),
        extra_args=("original",),
        fixed_input_size=True,
        paper="LeCun et al., Gradient-based learning applied to document recognition, 1998",
    )
)
register(
    ModelInfo(
        name="alexnet",
        entrypoint="edgecnn.models.alexnet:AlexNet",
        # conv1 11x11/4 (pad 2) then three 3x3/2 max pools without padding:
        # 63 -> 15 -> 7 -> (conv2) 7 -> 3 -> (conv3-5) 3 -> 1. At 62 conv1 gives 14,
        # pool1 6, pool2 2, and pool5 has no 3x3 window left.
        default_input_shape=(224, 224, 3),
        min_input_size=63,
        preprocess="caffe",
        extra_args=("lrn", "dropout"),
        fixed_input_size=True,
        paper="Krizhevsky et al., ImageNet classification with deep CNNs, 2012; "
        "single tower as in Krizhevsky, One weird trick, 2014",
    )
)
for _name, _twin in (("vgg16", "VGG16"), ("vgg19", "VGG19")):
    register(
        ModelInfo(
            name=_name,
            entrypoint=f"edgecnn.models.vgg:{_twin}",
            default_input_shape=(224, 224, 3),
            min_input_size=32,
            preprocess="caffe",
            keras_twin=_twin,
            imagenet_weights=True,
            fixed_input_size=True,
            paper="Simonyan & Zisserman, Very deep convolutional networks, 2014",
        )
    )
for _depth in (18, 34, 50, 101, 152):
    _twin = f"ResNet{_depth}" if _depth >= 50 else None
    register(
        ModelInfo(
            name=f"resnet{_depth}",
            entrypoint=f"edgecnn.models.resnet:ResNet{_depth}",
            default_input_shape=(224, 224, 3),
            min_input_size=32,
            preprocess="caffe",
            keras_twin=_twin,
            imagenet_weights=_twin is not None,
            paper="He et al., Deep residual learning for image recognition, 2015",
        )
    )
register(
    ModelInfo(
        name="googlenet",
        entrypoint="edgecnn.models.googlenet:GoogLeNet",
        # The graph (all 'same' pools) builds at any size; below 32 (its total stride)
        # stage 5 would see a 1x1 map made mostly of padding, so 32 is the floor.
        default_input_shape=(224, 224, 3),
        min_input_size=32,
        preprocess="tf",
        aliases=("inception_v1",),
        extra_args=("aux_logits", "batch_norm"),
        # Trained with the two auxiliary classifiers of the paper (section 5: loss
        # weight 0.3 each), exported without them.
        train_kwargs=(("aux_logits", True),),
        auxiliary_outputs=("aux1_predictions", "aux2_predictions"),
        auxiliary_loss_weight=0.3,
        paper="Szegedy et al., Going deeper with convolutions, 2014",
    )
)
register(
    ModelInfo(
        name="mobilenet_v1",
        entrypoint="edgecnn.models.mobilenet_v1:MobileNet",
        default_input_shape=(224, 224, 3),
        min_input_size=32,
        preprocess="tf",
        aliases=("mobilenet", "mobilenetv1"),
        keras_twin="MobileNet",
        imagenet_weights=True,
        extra_args=("alpha", "depth_multiplier", "dropout"),
        paper="Howard et al., MobileNets, 2017",
    )
)
register(
    ModelInfo(
        name="mobilenet_v2",
        entrypoint="edgecnn.models.mobilenet_v2:MobileNetV2",
        default_input_shape=(224, 224, 3),
        min_input_size=32,
        preprocess="tf",
        aliases=("mobilenetv2",),
        keras_twin="MobileNetV2",
        imagenet_weights=True,
        extra_args=("alpha",),
        paper="Sandler et al., MobileNetV2: inverted residuals and linear bottlenecks, 2018",
    )
)
