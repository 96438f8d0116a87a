package smartturn_test

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/earshot-dev/earshot/transcriber/smartturn"
)

// identityModel encodes a real ONNX model (protobuf, onnx.proto field
// numbers) of one Identity node from a float32 input of the given name and
// shape to an output "y": a well-formed model that is not Smart Turn.
func identityModel(input string, shape ...int64) []byte {
	dims := func() []byte {
		var shp []byte
		for _, d := range shape {
			shp = pbBytes(shp, 1, pbVarint(nil, 1, uint64(d))) // TensorShapeProto.dim { dim_value }
		}
		tensor := pbVarint(nil, 1, 1)    // TypeProto.Tensor.elem_type = FLOAT
		tensor = pbBytes(tensor, 2, shp) // .shape
		return pbBytes(nil, 1, tensor)   // TypeProto.tensor_type
	}
	valueInfo := func(name string) []byte {
		v := pbBytes(nil, 1, []byte(name)) // ValueInfoProto.name
		return pbBytes(v, 2, dims())       // .type
	}
	node := pbBytes(nil, 1, []byte(input))          // NodeProto.input
	node = pbBytes(node, 2, []byte("y"))            // .output
	node = pbBytes(node, 4, []byte("Identity"))     // .op_type
	graph := pbBytes(nil, 1, node)                  // GraphProto.node
	graph = pbBytes(graph, 2, []byte("g"))          // .name
	graph = pbBytes(graph, 11, valueInfo(input))    // .input
	graph = pbBytes(graph, 12, valueInfo("y"))      // .output
	model := pbVarint(nil, 1, 8)                    // ModelProto.ir_version
	model = pbBytes(model, 8, pbVarint(nil, 2, 13)) // .opset_import { version: 13 }
	return pbBytes(model, 7, graph)                 // .graph
}

func pbVarint(b []byte, field int, v uint64) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3)
	return binary.AppendUvarint(b, v)
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// A valid ONNX model that is not Smart Turn is refused at Open with what is wrong.
func TestOpenRefusesOtherModels(t *testing.T) {
	openModel(t) // needs the library
	dir := t.TempDir()
	for _, c := range []struct {
		name, input string
		shape       []int64
		want        string
	}{
		{"other input name", "x", []int64{1, 80, 800}, "named x, not input_features"},
		{"other shape", "input_features", []int64{1, 80, 100}, "not [batch, 80, 800]"},
		{"other rank", "input_features", []int64{1, 64000}, "2 dimensions"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "_")+".onnx")
			if err := os.WriteFile(p, identityModel(c.input, c.shape...), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := smartturn.Open(p, smartturn.Options{})
			if !errors.Is(err, smartturn.ErrModel) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v: want ErrModel saying %q", err, c.want)
			}
		})
	}
}
